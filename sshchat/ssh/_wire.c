/* sshchat.ssh._wire: fastpath.send_data for AES-GCM, and for AES-CTR with
 * an encrypt-then-MAC HMAC, in C.
 *
 * Why: at moderate load (100 users, one message every 12 ms) each message
 * goes out as 100 single-message packets, and the Python that builds, seals
 * and writes one of them ran 3-4x slower in the real server than in a tight
 * loop (the core has gone idle between messages and comes back cold). The
 * same steps in C are a few hundred instructions and one OpenSSL context
 * per key, reused, where AESGCM.encrypt copies a context per packet.
 *
 * What it does is exactly fastpath._py_send_data (the Python version, used
 * when this module is not built, and for ciphers other than AES-GCM): the
 * same checks against asyncssh's state, the same packet, the same counters
 * updated (the one check left out, that the cipher needs no IGNORE packets,
 * holds for both AES-GCM ciphers by definition). asyncssh's objects stay the only state (the cipher's _iv, the
 * connection's sequence number and rekey bytes, the channel's window), so
 * asyncssh's own writes interleave with ours as before. Tested byte for byte
 * against asyncssh's channel.write (tests/test_fastpath.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#endif
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MSG_CHANNEL_DATA 94
#define GCM_TAG 16
#define GCM_IV 12
#define POOL_SIZE 65536

/* ------------------------------------------------------------------ MAC */

/* An HMAC context keyed once per key exchange and reset per packet: no
 * lookup of the digest by name, no key schedule and no allocation per
 * packet (OpenSSL 3's one-shot HMAC() does all three). */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
static EVP_MAC *hmac_alg = NULL;

static void *
mac_new(const char *digest, const unsigned char *key, size_t keylen)
{
    EVP_MAC_CTX *ctx;
    OSSL_PARAM params[2];

    if (hmac_alg == NULL && (hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
        return NULL;
    if ((ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, key, keylen, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int
mac_packet(void *ctx, const unsigned char *seq, const unsigned char *data, size_t len, unsigned char *out,
           size_t cap)
{
    size_t outlen = 0;

    return EVP_MAC_init(ctx, NULL, 0, NULL) && EVP_MAC_update(ctx, seq, 4) && EVP_MAC_update(ctx, data, len)
        && EVP_MAC_final(ctx, out, &outlen, cap);
}

static void
mac_free(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}
#else
static void *
mac_new(const char *digest, const unsigned char *key, size_t keylen)
{
    const EVP_MD *md = EVP_get_digestbyname(digest);
    HMAC_CTX *ctx = md != NULL ? HMAC_CTX_new() : NULL;

    if (ctx != NULL && !HMAC_Init_ex(ctx, key, (int)keylen, md, NULL)) {
        HMAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int
mac_packet(void *ctx, const unsigned char *seq, const unsigned char *data, size_t len, unsigned char *out,
           size_t cap)
{
    unsigned int outlen = 0;

    return HMAC_Init_ex(ctx, NULL, 0, NULL, NULL) && HMAC_Update(ctx, seq, 4) && HMAC_Update(ctx, data, len)
        && HMAC_Final(ctx, out, &outlen);
}

static void
mac_free(void *ctx)
{
    HMAC_CTX_free(ctx);
}
#endif

/* ------------------------------------------- OpenSSL contexts as objects */

/* GcmSealer and CtrStream: a Python object holding one OpenSSL cipher
 * context, keyed once and reused for every packet. */
typedef struct {
    PyObject_HEAD
    EVP_CIPHER_CTX *ctx;
} CipherBox;

typedef CipherBox GcmSealer;
typedef CipherBox CtrStream;

static void
box_dealloc(CipherBox *self)
{
    if (self->ctx != NULL)
        EVP_CIPHER_CTX_free(self->ctx);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Key the box's context for alg: with iv for a stream cipher, or for
 * AES-GCM (gcm) with the nonce length set and the nonce given per packet.
 * 0, or -1 with an error set and no half-keyed context left behind. */
static int
box_key(CipherBox *self, const EVP_CIPHER *alg, const void *key, const void *iv, int gcm, const char *what)
{
    int ok;

    if (self->ctx == NULL)
        self->ctx = EVP_CIPHER_CTX_new();
    ok = self->ctx != NULL
        && (gcm ? EVP_EncryptInit_ex(self->ctx, alg, NULL, NULL, NULL)
                      && EVP_CIPHER_CTX_ctrl(self->ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_IV, NULL)
                      && EVP_EncryptInit_ex(self->ctx, NULL, NULL, key, NULL)
                : EVP_EncryptInit_ex(self->ctx, alg, NULL, key, iv));
    if (!ok) {
        ERR_clear_error();
        if (self->ctx != NULL) { /* no key rather than a wrong one */
            EVP_CIPHER_CTX_free(self->ctx);
            self->ctx = NULL;
        }
        PyErr_Format(PyExc_RuntimeError, "OpenSSL could not set up %s", what);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ GcmSealer */

static int
sealer_init(GcmSealer *self, PyObject *args, PyObject *kwds)
{
    Py_buffer key;
    const EVP_CIPHER *alg;
    int ok;

    if (!_PyArg_NoKeywords("GcmSealer", kwds) || !PyArg_ParseTuple(args, "y*:GcmSealer", &key))
        return -1;
    alg = key.len == 16 ? EVP_aes_128_gcm() : key.len == 32 ? EVP_aes_256_gcm() : NULL;
    if (alg == NULL) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "an AES-GCM key is 16 or 32 bytes");
        return -1;
    }
    ok = box_key(self, alg, key.buf, NULL, 1, "AES-GCM");
    PyBuffer_Release(&key);
    return ok;
}

/* Encrypt buf[0:len] in place, aad authenticated, tag written to tag. */
static int
seal_in_place(EVP_CIPHER_CTX *ctx, const unsigned char *iv, const unsigned char *aad, int aadlen,
              unsigned char *buf, int len, unsigned char *tag)
{
    int outl = 0, tail = 0;

    if (!EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv))
        return 0;
    if (aadlen > 0 && !EVP_EncryptUpdate(ctx, NULL, &outl, aad, aadlen))
        return 0;
    if (!EVP_EncryptUpdate(ctx, buf, &outl, buf, len))
        return 0;
    if (!EVP_EncryptFinal_ex(ctx, buf + outl, &tail))
        return 0;
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag);
}

/* encrypt(nonce, data, associated_data) -> ciphertext + tag, as AESGCM's. */
static PyObject *
sealer_encrypt(GcmSealer *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer iv, data, aad;
    PyObject *out = NULL;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encrypt(nonce, data, associated_data)");
        return NULL;
    }
    if (self->ctx == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "GcmSealer has no key");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &iv, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&iv);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &aad, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&iv);
        PyBuffer_Release(&data);
        return NULL;
    }
    if (iv.len != GCM_IV || data.len > INT_MAX - GCM_TAG || aad.len > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "a 12-byte nonce, and data under 2 GiB");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, data.len + GCM_TAG);
    if (out == NULL)
        goto done;
    {
        unsigned char *buf = (unsigned char *)PyBytes_AS_STRING(out);
        memcpy(buf, data.buf, data.len);
        if (!seal_in_place(self->ctx, iv.buf, aad.buf, (int)aad.len, buf, (int)data.len, buf + data.len)) {
            Py_CLEAR(out);
            ERR_clear_error();
            PyErr_SetString(PyExc_RuntimeError, "OpenSSL could not seal the packet");
        }
    }
done:
    PyBuffer_Release(&iv);
    PyBuffer_Release(&data);
    PyBuffer_Release(&aad);
    return out;
}

static PyMethodDef sealer_methods[] = {
    {"encrypt", (PyCFunction)(void (*)(void))sealer_encrypt, METH_FASTCALL,
     "encrypt(nonce, data, associated_data) -> ciphertext + 16-byte tag"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GcmSealerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sshchat.ssh._wire.GcmSealer",
    .tp_doc = "AES-GCM sealing with one OpenSSL context per key, reused for every packet.",
    .tp_basicsize = sizeof(GcmSealer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sealer_init,
    .tp_dealloc = (destructor)box_dealloc,
    .tp_methods = sealer_methods,
};

/* ------------------------------------------------------------ CtrStream */

/* One AES-CTR keystream for a sending cipher: fastpath replaces asyncssh's
 * BasicCipher.encrypt with this for CTR ciphers from their first packet, so
 * asyncssh's own packets and ours draw on the same stream. */
static int
ctr_init(CtrStream *self, PyObject *args, PyObject *kwds)
{
    Py_buffer key, nonce;
    const EVP_CIPHER *alg;
    int ok;

    if (self->ctx != NULL) { /* a stream in use stays where it is */
        PyErr_SetString(PyExc_RuntimeError, "a CtrStream is keyed once");
        return -1;
    }
    if (!_PyArg_NoKeywords("CtrStream", kwds) || !PyArg_ParseTuple(args, "y*y*:CtrStream", &key, &nonce))
        return -1;
    alg = key.len == 16 ? EVP_aes_128_ctr() : key.len == 24 ? EVP_aes_192_ctr() : key.len == 32 ? EVP_aes_256_ctr() : NULL;
    if (alg == NULL || nonce.len != 16) {
        PyBuffer_Release(&key);
        PyBuffer_Release(&nonce);
        PyErr_SetString(PyExc_ValueError, "an AES-CTR key is 16, 24 or 32 bytes and its counter block 16");
        return -1;
    }
    ok = box_key(self, alg, key.buf, nonce.buf, 0, "AES-CTR");
    PyBuffer_Release(&key);
    PyBuffer_Release(&nonce);
    return ok;
}

/* Encrypt buf[0:len] in place with the next len bytes of keystream. */
static int
ctr_in_place(EVP_CIPHER_CTX *ctx, unsigned char *buf, int len)
{
    int outl = 0;

    return EVP_EncryptUpdate(ctx, buf, &outl, buf, len) && outl == len;
}

static PyObject *
ctr_update(CtrStream *self, PyObject *arg)
{
    Py_buffer data;
    PyObject *out;

    if (self->ctx == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "CtrStream has no key");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (data.len > INT_MAX) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "data under 2 GiB");
        return NULL;
    }
    out = PyBytes_FromStringAndSize(data.buf, data.len);
    PyBuffer_Release(&data);
    if (out != NULL && !ctr_in_place(self->ctx, (unsigned char *)PyBytes_AS_STRING(out), (int)PyBytes_GET_SIZE(out))) {
        Py_CLEAR(out);
        ERR_clear_error();
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL could not encrypt");
    }
    return out;
}

static PyMethodDef ctr_methods[] = {
    {"update", (PyCFunction)ctr_update, METH_O, "update(data) -> data encrypted with the next bytes of keystream"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CtrStreamType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sshchat.ssh._wire.CtrStream",
    .tp_doc = "An AES-CTR keystream, CtrStream(key, counter_block): update(data) encrypts the next bytes.",
    .tp_basicsize = sizeof(CtrStream),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ctr_init,
    .tp_dealloc = (destructor)box_dealloc,
    .tp_methods = ctr_methods,
};

/* -------------------------------------------------------------- padding */

static unsigned char pool[POOL_SIZE];
static Py_ssize_t pool_at = POOL_SIZE;
static PyObject *padding_source = NULL; /* tests: a callable n -> bytes */

static int
fill_padding(unsigned char *dst, Py_ssize_t n)
{
    if (padding_source != NULL) {
        PyObject *source = padding_source, *pad;
        Py_INCREF(source); /* the call may replace it */
        pad = PyObject_CallFunction(source, "n", n);
        Py_DECREF(source);
        if (pad == NULL)
            return -1;
        if (!PyBytes_Check(pad) || PyBytes_GET_SIZE(pad) != n) {
            Py_DECREF(pad);
            PyErr_SetString(PyExc_ValueError, "the padding source gave the wrong number of bytes");
            return -1;
        }
        memcpy(dst, PyBytes_AS_STRING(pad), n);
        Py_DECREF(pad);
        return 0;
    }
    if (pool_at + n > POOL_SIZE) {
        Py_ssize_t got = 0;
        while (got < POOL_SIZE) {
            ssize_t r = getrandom(pool + got, POOL_SIZE - got, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
            }
            got += r;
        }
        pool_at = 0;
    }
    memcpy(dst, pool + pool_at, n);
    pool_at += n;
    return 0;
}

/* ------------------------------------------------------------ send_data */

static int enabled = 0;
static PyObject *gcm_encryption_type = NULL; /* asyncssh.encryption.GCMEncryption */
static PyObject *etm_encryption_type = NULL; /* asyncssh.encryption.ETMEncryption */
static PyObject *etm_parts = NULL;           /* enc -> (CtrStream, mac key, digest name, mac size) or None */
static PyObject *logger_type = NULL;         /* asyncssh.logging.SSHLogger */
static PyObject *other_cipher = NULL;        /* the Python send_data, for other ciphers */
static PyObject *make_sealer = NULL;         /* cipher -> GcmSealer, cached on the cipher */

static PyObject *s_conn, *s_send_state, *s_send_buf, *s_send_window, *s_send_pktsize, *s_send_chan,
    *s_transport, *s_deferred_packets, *s_kex_complete, *s_auth_complete, *s_compressor,
    *s_send_encryption, *s_rekey_bytes_sent, *s_rekey_bytes, *s_rekey_seconds, *s_rekey_time,
    *s_debug_level, *s_send_blocksize, *s_send_enchdrlen, *s_send_seq, *s_cipher, *s_iv,
    *s_sealer, *s_write, *s_get_write_buffer_size, *s_open, *s_owner;

/* obj.name as a C integer in *out: 0, or -1 with an error set (missing,
 * not an int, or beyond 64 bits). */
static int
int_attr(PyObject *obj, PyObject *name, long long *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);

    if (v == NULL)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* 1 true, 0 false, -1 error. */
static int
truth_attr(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    int r;

    if (v == NULL)
        return -1;
    r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

static int
set_int_attr(PyObject *obj, PyObject *name, long long value)
{
    PyObject *v = PyLong_FromLongLong(value);
    int r;

    if (v == NULL)
        return -1;
    r = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return r;
}

#define NOT_SENT -1
#define FAILED -2
#define NOT_MINE -3

/* What the C writer keeps for one connection while it owns its sending
 * state: the sequence number, the bytes sent since the last key exchange,
 * the AES-GCM nonce, and what the checks on the connection read (keys
 * settled, nothing held back, the rekey limits). At 100
 * users a packet's reads and writes of asyncssh's attributes were each a
 * cold probe into a connection's large dict, about a fifth of the server's
 * time; while owned, a packet touches none of them.
 *
 * It is owned from the C writer's first packet after asyncssh last ran for
 * the connection, and given back (the counters written to asyncssh's
 * attributes) before asyncssh runs for it again: fastpath hooks the
 * connection's send_packet (every packet asyncssh sends), _recv_data (every
 * byte the client sends) and connection_lost to call release() first, and
 * the writer releases it itself whenever it declines a packet; and
 * _send_kexinit, which asyncssh also calls from a task of its own (a client's
 * KEXINIT) and which resets the rekey count before it sends. So asyncssh
 * never sees a stale counter, and a change of state it makes (new keys, a
 * rekey due) is read afresh at the next packet. The transport is read for
 * every packet: asyncssh drops it without running any of those (an abort). */
/* When asyncssh wants new keys: bytes sent since the last exchange against
 * the limit, and the time it is due (when rekey_seconds is set). */
typedef struct {
    long long sent, limit;
    int timed;
    double due;
} Rekey;

typedef struct {
    PyObject_HEAD
    int owned;            /* the fields below are the truth, not conn's attributes */
    int moved;            /* a packet went out while owned: write back on release */
    int has_iv;           /* AES-GCM: iv holds the cipher's next nonce */
    long long seq;
    Rekey rekey;
    unsigned char iv[GCM_IV];
    PyObject *enc;        /* conn._send_encryption when owned */
    PyObject *cipher;     /* its _cipher, whose _iv is written back */
} Owner;

static int
owner_traverse(Owner *self, visitproc visit, void *arg)
{
    Py_VISIT(self->enc);
    Py_VISIT(self->cipher);
    return 0;
}

static int
owner_clear(Owner *self)
{
    self->owned = self->moved = self->has_iv = 0;
    Py_CLEAR(self->enc);
    Py_CLEAR(self->cipher);
    return 0;
}

static void
owner_dealloc(Owner *self)
{
    PyObject_GC_UnTrack(self);
    owner_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Write what moved back into asyncssh's attributes; not owned after. */
static int
owner_release(Owner *o, PyObject *conn)
{
    int r = 0;

    if (o->owned && o->moved) { /* each is tried: one failing (no memory) must not cost the others */
        PyObject *type = NULL, *value = NULL, *tb = NULL;
        if (o->has_iv) {
            PyObject *iv = PyBytes_FromStringAndSize((const char *)o->iv, GCM_IV);
            if (iv == NULL || PyObject_SetAttr(o->cipher, s_iv, iv) < 0) {
                r = -1;
                PyErr_Fetch(&type, &value, &tb);
            }
            Py_XDECREF(iv);
        }
        if (set_int_attr(conn, s_send_seq, o->seq) < 0) {
            r = -1;
            if (type == NULL) PyErr_Fetch(&type, &value, &tb); else PyErr_Clear();
        }
        if (set_int_attr(conn, s_rekey_bytes_sent, o->rekey.sent) < 0) {
            r = -1;
            if (type == NULL) PyErr_Fetch(&type, &value, &tb); else PyErr_Clear();
        }
        if (type != NULL)
            PyErr_Restore(type, value, tb);
    }
    owner_clear(o);
    return r;
}

static PyObject *
owner_release_py(Owner *self, PyObject *conn)
{
    if (owner_release(self, conn) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
owner_owned(Owner *self, void *closure)
{
    return PyBool_FromLong(self->owned);
}

static PyMethodDef owner_methods[] = {
    {"release", (PyCFunction)owner_release_py, METH_O,
     "release(conn): write the counters back to conn's attributes; asyncssh's again until the next C packet"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef owner_getset[] = {
    {"owned", (getter)owner_owned, NULL, "whether the C writer holds the connection's sending state now", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject OwnerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sshchat.ssh._wire.Owner",
    .tp_doc = "One connection's sending state while the C writer holds it (see fastpath.new_link).",
    .tp_basicsize = sizeof(Owner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)owner_dealloc,
    .tp_traverse = (traverseproc)owner_traverse,
    .tp_clear = (inquiry)owner_clear,
    .tp_free = PyObject_GC_Del,
    .tp_methods = owner_methods,
    .tp_getset = owner_getset,
};

/* What one session's channel keeps between packets: values asyncssh sets
 * once per channel (its number and packet size), once per key exchange (the
 * encryption object, with its block size, header length, compressor, cipher
 * and our sealer), or once for good (authentication done). At 100 users each
 * attribute read is a cold probe into a connection's large dict; these are
 * half of them. What changes between packets is read every time, or, with
 * an Owner, kept there while the C writer owns the connection's state. */
typedef struct {
    PyObject *enc;    /* the encryption object the fields below were read for */
    PyObject *cipher; /* enc._cipher */
    PyObject *sealer; /* AES-GCM: a GcmSealer */
    PyObject *stream; /* AES-CTR with an encrypt-then-MAC HMAC: the cipher's CtrStream... */
    void *mac;        /* ...and an HMAC context keyed for it */
    int mac_size;
    int not_mine;     /* enc is one the C writer leaves to Python (kept so it is not asked again) */
    long long chan_no, pktsize, blocksize, enchdrlen;
    long long window; /* the channel's send window as chan_ok read it, for send_packet */
    void *chan;       /* the channel they were read from (its address only: no reference, no cycle) */
    int opened;       /* chan_no and pktsize read */
    int authed;       /* conn._auth_complete seen true */
} LinkCache;

typedef struct {
    PyObject_HEAD
    LinkCache c;
    Owner *owner; /* the connection's, shared by its channels' Links; NULL: read and write asyncssh's every packet */
} Link;

static void
cache_clear(LinkCache *c)
{
    Py_CLEAR(c->enc);
    Py_CLEAR(c->cipher);
    Py_CLEAR(c->sealer);
    Py_CLEAR(c->stream);
    if (c->mac != NULL) {
        mac_free(c->mac);
        c->mac = NULL;
    }
    c->opened = c->authed = c->not_mine = 0;
}

static int
link_init(Link *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"owner", NULL};
    PyObject *owner = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Link", names, &owner))
        return -1;
    if (owner != Py_None && !PyObject_TypeCheck(owner, &OwnerType)) {
        PyErr_SetString(PyExc_TypeError, "Link(owner) takes an Owner or None");
        return -1;
    }
    Py_XINCREF(owner == Py_None ? NULL : owner);
    Py_XSETREF(self->owner, owner == Py_None ? NULL : (Owner *)owner);
    return 0;
}

static int
link_traverse(Link *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->c.enc);
    Py_VISIT(self->c.cipher);
    Py_VISIT(self->c.sealer);
    Py_VISIT(self->c.stream);
    return 0;
}

static int
link_clear(Link *self)
{
    cache_clear(&self->c);
    Py_CLEAR(self->owner);
    return 0;
}

static void
link_dealloc(Link *self)
{
    PyObject_GC_UnTrack(self);
    link_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
link_kind(Link *self, void *closure)
{
    if (self->c.sealer != NULL)
        return PyUnicode_FromString("aes-gcm");
    if (self->c.stream != NULL)
        return PyUnicode_FromString("aes-ctr+hmac-etm");
    Py_RETURN_NONE;
}

static PyGetSetDef link_getset[] = {
    {"kind", (getter)link_kind, NULL, "what the last packet went out as in C (None: not in C yet)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sshchat.ssh._wire.Link",
    .tp_doc = "What send_data keeps for one session's channel between packets (pass it as send_data's third argument).",
    .tp_basicsize = sizeof(Link),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)link_init,
    .tp_dealloc = (destructor)link_dealloc,
    .tp_traverse = (traverseproc)link_traverse,
    .tp_clear = (inquiry)link_clear,
    .tp_free = PyObject_GC_Del,
    .tp_getset = link_getset,
};

/* Call a configured callable, holding a reference: configure() may run meanwhile. */
static PyObject *
call_held(PyObject *callable, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *r;

    Py_INCREF(callable);
    r = PyObject_Vectorcall(callable, args, nargs, NULL);
    Py_DECREF(callable);
    return r;
}

static PyObject *
sealer_of(PyObject *cipher)
{
    PyObject *sealer = PyObject_GetAttr(cipher, s_sealer);

    if (sealer != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return sealer;
    PyErr_Clear();
    return call_held(make_sealer, &cipher, 1);
}

/* AES-CTR and an HMAC, encrypt-then-MAC (what OpenSSH picks from our
 * default offer): the stream and MAC key, if fastpath gave the cipher one. */
static int
cache_etm(LinkCache *c, PyObject *enc, long long blocksize, long long enchdrlen)
{
    PyObject *parts = call_held(etm_parts, &enc, 1), *stream, *key, *name;
    const char *digest;
    const EVP_MD *md;
    long size;

    if (parts == NULL)
        return -1;
    if (parts == Py_None) {
        Py_DECREF(parts);
        return 0;
    }
    if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 4) {
        Py_DECREF(parts);
        PyErr_SetString(PyExc_TypeError, "etm_parts() gives (stream, key, digest, size) or None");
        return -1;
    }
    stream = PyTuple_GET_ITEM(parts, 0);
    key = PyTuple_GET_ITEM(parts, 1);
    name = PyTuple_GET_ITEM(parts, 2);
    size = PyLong_AsLong(PyTuple_GET_ITEM(parts, 3));
    digest = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    md = digest != NULL ? EVP_get_digestbyname(digest) : NULL;
    if (!PyObject_TypeCheck(stream, &CtrStreamType) || ((CtrStream *)stream)->ctx == NULL || !PyBytes_Check(key)
        || md == NULL || size <= 0 || size > EVP_MD_size(md)) {
        Py_DECREF(parts);
        return PyErr_Occurred() ? -1 : 0;
    }
    c->mac = mac_new(digest, (const unsigned char *)PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key));
    if (c->mac == NULL) {
        ERR_clear_error();
        Py_DECREF(parts);
        return 0; /* OpenSSL would not: Python does it */
    }
    Py_INCREF(enc);
    c->enc = enc;
    Py_INCREF(stream);
    c->stream = stream;
    c->mac_size = (int)size;
    c->blocksize = blocksize;
    c->enchdrlen = enchdrlen;
    Py_DECREF(parts);
    return 1;
}

/* Read what goes with a new encryption object into the cache: 1 done, 0 not
 * ours (the Python version decides), -1 error. */
static int
cache_keys(LinkCache *c, PyObject *conn, PyObject *enc)
{
    PyObject *v, *cipher, *sealer;
    long long blocksize, enchdrlen;
    int t;

    Py_CLEAR(c->enc);
    Py_CLEAR(c->cipher);
    Py_CLEAR(c->sealer);
    Py_CLEAR(c->stream);
    if (c->mac != NULL) {
        mac_free(c->mac);
        c->mac = NULL;
    }
    c->not_mine = 0;
    if ((v = PyObject_GetAttr(conn, s_compressor)) == NULL)
        return -1;
    t = v != Py_None;
    Py_DECREF(v);
    if (t) /* compression negotiated: asyncssh's path, always */
        return 0;
    if (int_attr(conn, s_send_blocksize, &blocksize) < 0 || int_attr(conn, s_send_enchdrlen, &enchdrlen) < 0)
        return -1;
    if (blocksize != 16 || enchdrlen < 0 || enchdrlen > 16) /* not what AES looks like */
        return 0;
    if ((PyObject *)Py_TYPE(enc) == etm_encryption_type)
        return cache_etm(c, enc, blocksize, enchdrlen);
    if ((cipher = PyObject_GetAttr(enc, s_cipher)) == NULL)
        return -1;
    if ((sealer = sealer_of(cipher)) == NULL) {
        Py_DECREF(cipher);
        return -1;
    }
    if (!PyObject_TypeCheck(sealer, &GcmSealerType) || ((GcmSealer *)sealer)->ctx == NULL) {
        Py_DECREF(cipher); /* made while the C path was off */
        Py_DECREF(sealer);
        return 0;
    }
    Py_INCREF(enc);
    c->enc = enc;
    c->cipher = cipher;
    c->sealer = sealer;
    c->blocksize = blocksize;
    c->enchdrlen = enchdrlen;
    return 1;
}

static double
monotonic_now(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now); /* the clock of time.monotonic() */
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

/* asyncssh's rekey counters of the connection into *r. */
static int
read_rekey(PyObject *conn, Rekey *r)
{
    PyObject *v;

    if (int_attr(conn, s_rekey_bytes_sent, &r->sent) < 0 || int_attr(conn, s_rekey_bytes, &r->limit) < 0
        || (r->timed = truth_attr(conn, s_rekey_seconds)) < 0)
        return -1;
    r->due = 0.0;
    if (r->timed) {
        if ((v = PyObject_GetAttr(conn, s_rekey_time)) == NULL)
            return -1;
        r->due = PyFloat_AsDouble(v);
        Py_DECREF(v);
        if (r->due == -1.0 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static int
rekey_due(const Rekey *r)
{
    return r->sent >= r->limit || (r->timed && monotonic_now() >= r->due);
}

/* Can this channel take a packet of n bytes from us now: open, nothing
 * queued, room in the peer's window and packet size? 1 yes, 0 no, NOT_MINE
 * (a channel number no SSH packet can carry), -1 error. */
static int
chan_ok(LinkCache *c, PyObject *chan, Py_ssize_t n)
{
    PyObject *v;
    int t;
    long long a;

    v = PyObject_GetAttr(chan, s_send_state);
    if (v == NULL)
        return -1;
    t = v == s_open || (PyUnicode_Check(v) && PyUnicode_Compare(v, s_open) == 0);
    Py_DECREF(v);
    if (!t)
        return PyErr_Occurred() ? -1 : 0;
    if ((t = truth_attr(chan, s_send_buf)) != 0)
        return t < 0 ? -1 : 0;
    if (int_attr(chan, s_send_window, &a) < 0)
        return -1;
    if (n > a)
        return 0;
    c->window = a;
    if (c->chan != (void *)chan) /* a Link used with another channel starts over */
        c->opened = 0;
    if (!c->opened) { /* set when the channel opened, and kept while it is open */
        if (int_attr(chan, s_send_chan, &c->chan_no) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError))
                return -1;
            PyErr_Clear(); /* None: not open after all */
            return 0;
        }
        if (int_attr(chan, s_send_pktsize, &c->pktsize) < 0)
            return -1;
        c->chan = (void *)chan;
        if (c->chan_no < 0 || c->chan_no > 0xFFFFFFFFLL)
            return NOT_MINE;
        c->opened = 1;
    }
    return n <= c->pktsize;
}

/* Is packet logging asked for (asyncssh's path logs every packet)? */
static int
packet_logging(void)
{
    long long level;

    if (int_attr(logger_type, s_debug_level, &level) < 0)
        return -1;
    return level >= 2;
}

/* cache_keys for new keys, remembering keys that are not ours as such for as
 * long as they last: 1 ours, NOT_MINE, -1 error. */
static int
keys_for(LinkCache *c, PyObject *conn, PyObject *enc)
{
    int t = cache_keys(c, conn, enc);

    if (t == 0) {
        Py_CLEAR(c->enc);
        Py_INCREF(enc);
        c->enc = enc;
        c->not_mine = 1;
        return NOT_MINE;
    }
    return t;
}

/* Can this connection take a packet of n bytes from us now? 1 yes (and
 * the cache holds its keys), 0 no, NOT_MINE for the Python version, -1 error. */
static int
direct_ok(LinkCache *c, PyObject *chan, PyObject *conn, Py_ssize_t n, Rekey *rk)
{
    PyObject *v;
    int t;

    if ((t = chan_ok(c, chan, n)) != 1)
        return t;
    /* connection: keys settled, nothing held back, no rekey due */
    if ((v = PyObject_GetAttr(conn, s_transport)) == NULL)
        return -1;
    t = v == Py_None;
    Py_DECREF(v);
    if (t)
        return 0;
    if ((t = truth_attr(conn, s_deferred_packets)) != 0)
        return t < 0 ? -1 : 0;
    if ((t = truth_attr(conn, s_kex_complete)) != 1)
        return t < 0 ? -1 : 0;
    if (!c->authed) { /* once true, true for good */
        if ((t = truth_attr(conn, s_auth_complete)) != 1)
            return t < 0 ? -1 : 0;
        c->authed = 1;
    }
    if (read_rekey(conn, rk) < 0)
        return -1;
    if (rekey_due(rk))
        return 0;
    if ((t = packet_logging()) != 0)
        return t < 0 ? -1 : 0;
    if ((v = PyObject_GetAttr(conn, s_send_encryption)) == NULL)
        return -1;
    if (v == Py_None) {
        Py_DECREF(v);
        return 0;
    }
    if ((PyObject *)Py_TYPE(v) != gcm_encryption_type && (PyObject *)Py_TYPE(v) != etm_encryption_type) { /* chacha20, MAC-then-encrypt */
        Py_DECREF(v);
        return NOT_MINE;
    }
    if (v == c->enc) {
        Py_DECREF(v);
        return c->not_mine ? NOT_MINE : 1;
    }
    t = keys_for(c, conn, v); /* new keys since the last packet: read them */
    Py_DECREF(v);
    return t;
}

/* direct_ok for a connection whose state the Link's Owner holds: nothing on
 * it can have changed since the Owner read it (asyncssh has not run for it),
 * so only the channel and the Owner's own counters are looked at. */
static int
owned_ok(LinkCache *c, Owner *o, PyObject *chan, PyObject *conn, Py_ssize_t n)
{
    int t;

    if ((t = chan_ok(c, chan, n)) != 1)
        return t;
    if (rekey_due(&o->rekey))
        return 0; /* a rekey is due: asyncssh's send starts it */
    if ((t = packet_logging()) != 0)
        return t < 0 ? -1 : 0;
    if (c->enc != o->enc) /* this channel last sent under other keys */
        return keys_for(c, conn, o->enc);
    return c->not_mine ? NOT_MINE : 1;
}

/* Take the connection's sending state into the Owner, right after direct_ok
 * read it (the rekey counters, in *rk) and said yes. */
static int
owner_acquire(Owner *o, LinkCache *c, PyObject *conn, const Rekey *rk)
{
    PyObject *v;
    long long seq;

    if (int_attr(conn, s_send_seq, &seq) < 0)
        return -1;
    if (c->sealer != NULL) {
        if ((v = PyObject_GetAttr(c->cipher, s_iv)) == NULL)
            return -1;
        if (!PyBytes_Check(v) || PyBytes_GET_SIZE(v) != GCM_IV) {
            Py_DECREF(v);
            PyErr_SetString(PyExc_ValueError, "unexpected AES-GCM nonce");
            return -1;
        }
        memcpy(o->iv, PyBytes_AS_STRING(v), GCM_IV);
        Py_DECREF(v);
    }
    owner_clear(o);
    Py_INCREF(c->enc);
    o->enc = c->enc;
    if (c->sealer != NULL) {
        Py_INCREF(c->cipher);
        o->cipher = c->cipher;
        o->has_iv = 1;
    }
    o->seq = seq;
    o->rekey = *rk;
    o->owned = 1;
    return 0;
}

/* Encrypt-then-MAC: the packet after its length encrypted with the next
 * keystream bytes, then HMAC(key, seq || length || ciphertext) after it. */
static int
etm_seal(LinkCache *c, long long seq, unsigned char *w, Py_ssize_t packet)
{
    unsigned char seqbuf[4], mac[EVP_MAX_MD_SIZE];

    if (!ctr_in_place(((CtrStream *)c->stream)->ctx, w + 4, (int)packet)) {
        ERR_clear_error();
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL could not encrypt the packet");
        return -1;
    }
    seqbuf[0] = seq >> 24; seqbuf[1] = seq >> 16; seqbuf[2] = seq >> 8; seqbuf[3] = seq;
    if (!mac_packet(c->mac, seqbuf, w, 4 + (size_t)packet, mac, sizeof(mac))) {
        ERR_clear_error(); /* a keyed context cannot fail short of memory corruption; say so if it does */
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL could not compute the MAC");
        return -1;
    }
    memcpy(w + 4 + packet, mac, c->mac_size);
    return 0;
}

/* Build, encrypt and write one CHANNEL_DATA packet; the Owner's counters
 * move on. AES-GCM (c->sealer) or AES-CTR with an encrypt-then-MAC HMAC
 * (c->stream). */
static long long
send_packet(LinkCache *c, Owner *o, PyObject *chan, PyObject *transport, PyObject *data)
{
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *wire = NULL, *r;
    long long seq = o->seq, result = FAILED;
    long long chan_no = c->chan_no, blocksize = c->blocksize;
    Py_ssize_t payload, padlen, packet, trailer = c->sealer != NULL ? GCM_TAG : c->mac_size;
    unsigned char iv[GCM_IV], *w;

    memcpy(iv, o->iv, GCM_IV);

    payload = 1 + 4 + 4 + n; /* type, channel, string length, bytes */
    padlen = (blocksize - (c->enchdrlen + payload) % blocksize) % blocksize;
    if (padlen < 4)
        padlen += blocksize;
    packet = 1 + payload + padlen; /* padding length byte first */
    if (packet > INT_MAX - 64) {
        PyErr_SetString(PyExc_ValueError, "packet too large");
        goto done;
    }
    wire = PyBytes_FromStringAndSize(NULL, 4 + packet + trailer);
    if (wire == NULL)
        goto done;
    w = (unsigned char *)PyBytes_AS_STRING(wire);
    w[0] = packet >> 24; w[1] = packet >> 16; w[2] = packet >> 8; w[3] = packet;
    w[4] = (unsigned char)padlen;
    w[5] = MSG_CHANNEL_DATA;
    w[6] = chan_no >> 24; w[7] = chan_no >> 16; w[8] = chan_no >> 8; w[9] = chan_no;
    w[10] = n >> 24; w[11] = n >> 16; w[12] = n >> 8; w[13] = n;
    memcpy(w + 14, PyBytes_AS_STRING(data), n);
    if (fill_padding(w + 14 + n, padlen) < 0)
        goto done;
    if (c->sealer == NULL) {
        if (etm_seal(c, seq, w, packet) < 0)
            goto done;
    } else {
        if (!seal_in_place(((GcmSealer *)c->sealer)->ctx, iv, w, 4, w + 4, (int)packet, w + 4 + packet)) {
            ERR_clear_error();
            PyErr_SetString(PyExc_RuntimeError, "OpenSSL could not seal the packet");
            goto done;
        }
        for (int i = GCM_IV - 1; i >= 4; i--) /* RFC 5647: the low 64 bits of the nonce count packets */
            if (++iv[i] != 0)
                break;
    }
    /* counted before the write: nothing it runs can see them half done */
    o->seq = (seq + 1) & 0xFFFFFFFFLL;
    o->rekey.sent += packet;
    memcpy(o->iv, iv, GCM_IV);
    o->moved = 1;
    if (set_int_attr(chan, s_send_window, c->window - n) < 0) /* the window too, for the same reason */
        goto done;

    r = PyObject_CallMethodOneArg(transport, s_write, wire);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ConnectionError))
            goto done;
        PyErr_Clear(); /* as asyncssh's _send: the connection is going anyway */
    } else {
        Py_DECREF(r);
    }
    r = PyObject_CallMethodNoArgs(transport, s_get_write_buffer_size);
    if (r != NULL) {
        result = PyLong_AsLongLong(r);
        Py_DECREF(r);
        if (result < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "the transport gave a negative buffer size");
            result = FAILED;
        }
    }
done:
    Py_XDECREF(wire);
    return result;
}

/* The connection's Owner, if fastpath gave it one, released. */
static int
release_any_owner(PyObject *conn)
{
    PyObject *owner = PyObject_GetAttr(conn, s_owner);
    int r = 0;

    if (owner == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    if (PyObject_TypeCheck(owner, &OwnerType))
        r = owner_release((Owner *)owner, conn);
    Py_DECREF(owner);
    return r;
}

/* owner_release, keeping an error already set (the first one is reported):
 * 0, or -1 if there is an error now. */
static int
release_keeping_error(Owner *o, PyObject *conn)
{
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    if (owner_release(o, conn) < 0) {
        if (type == NULL)
            return -1;
        PyErr_Clear();
    }
    PyErr_Restore(type, value, tb);
    return type == NULL ? 0 : -1;
}

static PyObject *
send_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *chan, *data, *conn;
    LinkCache scratch = {0}, *c = &scratch;
    Owner for_this_call = {0}, *o = &for_this_call; /* no Owner given: one for this packet, written back at once */
    PyObject *transport = NULL;
    Rekey rk;
    Py_ssize_t n;
    long long result;
    int ok;

    if (nargs < 2 || nargs > 3 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "send_data(chan, data: bytes, link: Link | None = None)");
        return NULL;
    }
    if (nargs == 3 && args[2] != Py_None) {
        if (!PyObject_TypeCheck(args[2], &LinkType)) {
            PyErr_SetString(PyExc_TypeError, "send_data's link must be a Link");
            return NULL;
        }
        c = &((Link *)args[2])->c;
        if (((Link *)args[2])->owner != NULL)
            o = ((Link *)args[2])->owner;
    }
    chan = args[0];
    data = args[1];
    n = PyBytes_GET_SIZE(data);
    if (!enabled || n == 0)
        return PyLong_FromLong(NOT_SENT);
    conn = PyObject_GetAttr(chan, s_conn);
    if (conn == NULL)
        return NULL;
    if (conn == Py_None) {
        Py_DECREF(conn);
        return PyLong_FromLong(NOT_SENT);
    }
    if (o == &for_this_call && release_any_owner(conn) < 0) /* the connection's own Owner may hold the counters */
        ok = -1;
    else if (o->owned) {
        ok = owned_ok(c, o, chan, conn, n);
    } else {
        ok = direct_ok(c, chan, conn, n, &rk);
        if (ok == 1 && owner_acquire(o, c, conn, &rk) < 0)
            ok = -1;
    }
    if (ok == 1) { /* read for every packet: an abort drops it with none of our hooks run */
        if ((transport = PyObject_GetAttr(conn, s_transport)) == NULL)
            ok = -1;
        else if (transport == Py_None)
            ok = 0;
    }
    /* declined: asyncssh (or the Python writer) sends next */
    if (ok != 1 && o->owned && release_keeping_error(o, conn) < 0)
        ok = -1;
    result = ok == 1 ? send_packet(c, o, chan, transport, data) : ok == 0 ? NOT_SENT : ok == NOT_MINE ? NOT_MINE : FAILED;
    if (o == &for_this_call && o->owned && release_keeping_error(o, conn) < 0)
        result = FAILED;
    Py_XDECREF(transport);
    Py_DECREF(conn);
    if (c == &scratch)
        cache_clear(&scratch);
    if (result == FAILED)
        return NULL;
    if (result == NOT_MINE)
        return call_held(other_cipher, args, 2);
    return PyLong_FromLongLong(result);
}

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"gcm_encryption", "logger", "other_cipher", "make_sealer", "etm_encryption", "etm_parts", NULL};
    PyObject *a, *b, *c, *d, *e, *f;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO:configure", names, &a, &b, &c, &d, &e, &f))
        return NULL;
    Py_INCREF(e); Py_XSETREF(etm_encryption_type, e);
    Py_INCREF(f); Py_XSETREF(etm_parts, f);
    Py_INCREF(a); Py_XSETREF(gcm_encryption_type, a);
    Py_INCREF(b); Py_XSETREF(logger_type, b);
    Py_INCREF(c); Py_XSETREF(other_cipher, c);
    Py_INCREF(d); Py_XSETREF(make_sealer, d);
    Py_RETURN_NONE;
}

static PyObject *
set_enabled(PyObject *module, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);

    if (on < 0)
        return NULL;
    if (on && (gcm_encryption_type == NULL || other_cipher == NULL)) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    enabled = on;
    Py_RETURN_NONE;
}

static PyObject *
set_padding(PyObject *module, PyObject *arg)
{
    if (arg == Py_None) {
        Py_CLEAR(padding_source);
    } else {
        Py_INCREF(arg);
        Py_XSETREF(padding_source, arg);
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"send_data", (PyCFunction)(void (*)(void))send_data, METH_FASTCALL,
     "send_data(chan, data, link=None) -> -1 (not sent: use chan.write) or the bytes left in the transport"},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(gcm_encryption, logger, other_cipher, make_sealer, etm_encryption, etm_parts)"},
    {"set_enabled", set_enabled, METH_O, "set_enabled(on): send_data sends only when on"},
    {"set_padding", set_padding, METH_O, "set_padding(callable or None): padding bytes for tests"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT, "sshchat.ssh._wire",
    "AES-GCM CHANNEL_DATA packets built, sealed and written in C (see fastpath.py).", -1, module_methods,
};

#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL

PyMODINIT_FUNC
PyInit__wire(void)
{
    PyObject *m;

    INTERN(s_conn, "_conn");
    INTERN(s_send_state, "_send_state");
    INTERN(s_send_buf, "_send_buf");
    INTERN(s_send_window, "_send_window");
    INTERN(s_send_pktsize, "_send_pktsize");
    INTERN(s_send_chan, "_send_chan");
    INTERN(s_transport, "_transport");
    INTERN(s_deferred_packets, "_deferred_packets");
    INTERN(s_kex_complete, "_kex_complete");
    INTERN(s_auth_complete, "_auth_complete");
    INTERN(s_compressor, "_compressor");
    INTERN(s_send_encryption, "_send_encryption");
    INTERN(s_rekey_bytes_sent, "_rekey_bytes_sent");
    INTERN(s_rekey_bytes, "_rekey_bytes");
    INTERN(s_rekey_seconds, "_rekey_seconds");
    INTERN(s_rekey_time, "_rekey_time");
    INTERN(s_debug_level, "_debug_level");
    INTERN(s_send_blocksize, "_send_blocksize");
    INTERN(s_send_enchdrlen, "_send_enchdrlen");
    INTERN(s_send_seq, "_send_seq");
    INTERN(s_cipher, "_cipher");
    INTERN(s_iv, "_iv");
    INTERN(s_sealer, "_sshchat_sealer");
    INTERN(s_write, "write");
    INTERN(s_get_write_buffer_size, "get_write_buffer_size");
    INTERN(s_open, "open");
    INTERN(s_owner, "_sshchat_owner");
    PyTypeObject *types[] = {&GcmSealerType, &CtrStreamType, &OwnerType, &LinkType};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    m = PyModule_Create(&wire_module);
    if (m == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const char *name = strrchr(types[i]->tp_name, '.') + 1;
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, name, (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
