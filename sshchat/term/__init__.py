"""What a person sees: cleaning input, rendering messages, the input line."""
