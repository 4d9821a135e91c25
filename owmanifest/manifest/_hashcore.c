/*
 * _hashcore: the inner loop of owmanifest's hashing engine, without the interpreter.
 *
 * For a batch of files (or piece-aligned regions of one large file) it reads the bytes and
 * computes, from the same buffer and in one pass, exactly what owmanifest/manifest/hashing.py
 * computes: the BEP 52 leaves (SHA-256 of each 16 KiB block, the last one as is), the piece
 * layer and the root; the v1 SHA-1 of each piece, the last piece zero-padded; and, when asked,
 * the SHA-256 of the whole file. The GIL is released for the whole batch, so threads use every
 * core and there is no per-file Python work. tests/unit/test_hashcore.py compares every result
 * and every error with the pure-Python engine.
 *
 * SHA-1 and SHA-256 are OpenSSL's: the very library Python's hashlib runs, found at run time
 * through the _hashlib extension module (load()), so nothing is linked at build time and no
 * OpenSSL headers are needed. hashing.py checks the functions against hashlib before it uses
 * them, and falls back to pure Python when this module is missing or cannot load them.
 *
 * On x86-64 processors with the SHA extensions, the BEP 52 leaves and whole v1 pieces are
 * hashed here instead, two messages at a time: they are independent messages, and the SHA round
 * instructions are latency-bound, so two interleaved messages run ~1.8-1.9x as fast per core as
 * one stream (OpenSSL hashes one message at a time). ADR 0009; hashing.py checks this code
 * against hashlib too before it uses it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The SHA intrinsics and target attributes: GCC 5+ and clang 4+ (others build without them) */
#if defined(__x86_64__) && \
    ((defined(__clang__) && __clang_major__ >= 4) || (!defined(__clang__) && __GNUC__ >= 5))
#define HAVE_SHANI_CODE 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define BLOCK 16384
#define HASH 32
#define SHA1_SIZE 20
#define MAX_HEIGHT 64
#define MAX_BUFFER (64 * 1024 * 1024)

#ifdef __APPLE__
#define MTIME_NS(st) ((long long)(st).st_mtimespec.tv_sec * 1000000000LL + (st).st_mtimespec.tv_nsec)
#define CTIME_NS(st) ((long long)(st).st_ctimespec.tv_sec * 1000000000LL + (st).st_ctimespec.tv_nsec)
#else
#define MTIME_NS(st) ((long long)(st).st_mtim.tv_sec * 1000000000LL + (st).st_mtim.tv_nsec)
#define CTIME_NS(st) ((long long)(st).st_ctim.tv_sec * 1000000000LL + (st).st_ctim.tv_nsec)
#endif

/* --- OpenSSL's low-level digest API -------------------------------------------------------- */

/* SHA256_CTX and SHA_CTX are plain structs of at most 112 bytes in every OpenSSL since 0.9.7
 * (and LibreSSL, BoringSSL); we only pass pointers, give them more room than they need, and
 * copy a context with memcpy, which is valid for a plain struct. */
typedef struct {
    _Alignas(16) unsigned char opaque[256];
} ctx_t;

typedef int (*init_fn)(ctx_t *);
typedef int (*update_fn)(ctx_t *, const void *, size_t);
typedef int (*final_fn)(unsigned char *, ctx_t *);

static init_fn sha256_init_p, sha1_init_p;
static update_fn sha256_update_p, sha1_update_p;
static final_fn sha256_final_p, sha1_final_p;
static int loaded;

/* --- SHA-256 with the x86 SHA extensions, one message or two interleaved --------------------- */

static int use_shani; /* the processor has them and they are enabled (sha_extensions()) */

#ifdef HAVE_SHANI_CODE
#define SHANI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t shani_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static const uint32_t shani_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* The state is held as the instructions want it: s0 = (A, B, E, F), s1 = (C, D, G, H). */
typedef struct {
    __m128i s0, s1;
} shani_state;

/* Four rounds with message words m (W[i..i+3]). */
#define SHANI_ROUNDS4(st, m, i)                                                        \
    do {                                                                               \
        __m128i t_ = _mm_add_epi32((m), _mm_loadu_si128((const __m128i *)(shani_k + (i)))); \
        (st).s1 = _mm_sha256rnds2_epu32((st).s1, (st).s0, t_);                         \
        (st).s0 = _mm_sha256rnds2_epu32((st).s0, (st).s1, _mm_shuffle_epi32(t_, 0x0E)); \
    } while (0)

/* W[i..i+3] from the 16 words before them, written over the oldest four (a). */
#define SHANI_SCHEDULE(a, b, c, d) \
    a = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(a, b), _mm_alignr_epi8(d, c, 4)), d)

#define SHANI_LOAD(p, j) _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16 * (j))), bswap)

/* The shuffle that turns four little-endian words into SHA-256's big-endian words and back */
#define SHANI_BSWAP _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL)

/* Rounds 16..63 of one message, its words in m0..m3, with the schedule unrolled in place. */
#define SHANI_REST(st, m0, m1, m2, m3)                                                          \
    SHANI_SCHEDULE(m0, m1, m2, m3); SHANI_ROUNDS4(st, m0, 16);                                  \
    SHANI_SCHEDULE(m1, m2, m3, m0); SHANI_ROUNDS4(st, m1, 20);                                  \
    SHANI_SCHEDULE(m2, m3, m0, m1); SHANI_ROUNDS4(st, m2, 24);                                  \
    SHANI_SCHEDULE(m3, m0, m1, m2); SHANI_ROUNDS4(st, m3, 28);                                  \
    SHANI_SCHEDULE(m0, m1, m2, m3); SHANI_ROUNDS4(st, m0, 32);                                  \
    SHANI_SCHEDULE(m1, m2, m3, m0); SHANI_ROUNDS4(st, m1, 36);                                  \
    SHANI_SCHEDULE(m2, m3, m0, m1); SHANI_ROUNDS4(st, m2, 40);                                  \
    SHANI_SCHEDULE(m3, m0, m1, m2); SHANI_ROUNDS4(st, m3, 44);                                  \
    SHANI_SCHEDULE(m0, m1, m2, m3); SHANI_ROUNDS4(st, m0, 48);                                  \
    SHANI_SCHEDULE(m1, m2, m3, m0); SHANI_ROUNDS4(st, m1, 52);                                  \
    SHANI_SCHEDULE(m2, m3, m0, m1); SHANI_ROUNDS4(st, m2, 56);                                  \
    SHANI_SCHEDULE(m3, m0, m1, m2); SHANI_ROUNDS4(st, m3, 60)

/* Compress n 64-byte blocks of one message into st. */
SHANI_TARGET static void
shani_blocks1(shani_state *st, const unsigned char *p, size_t n)
{
    const __m128i bswap = SHANI_BSWAP;
    shani_state s = *st;

    for (; n; n--, p += 64) {
        shani_state saved = s;
        __m128i m0 = SHANI_LOAD(p, 0), m1 = SHANI_LOAD(p, 1), m2 = SHANI_LOAD(p, 2),
                m3 = SHANI_LOAD(p, 3);
        SHANI_ROUNDS4(s, m0, 0);
        SHANI_ROUNDS4(s, m1, 4);
        SHANI_ROUNDS4(s, m2, 8);
        SHANI_ROUNDS4(s, m3, 12);
        SHANI_REST(s, m0, m1, m2, m3);
        s.s0 = _mm_add_epi32(s.s0, saved.s0);
        s.s1 = _mm_add_epi32(s.s1, saved.s1);
    }
    *st = s;
}

/* Compress n 64-byte blocks of each of two messages, interleaved: the two dependency chains
 * fill each other's latency. The interleaving is written out: the two blocks one after the
 * other, left to the processor's out-of-order window, ran at 2.35 GB/s against 2.92. */
SHANI_TARGET static void
shani_blocks2(shani_state *st, shani_state *su, const unsigned char *p, const unsigned char *q,
              size_t n)
{
    const __m128i bswap = SHANI_BSWAP;
    shani_state s = *st, u = *su;

    for (; n; n--, p += 64, q += 64) {
        shani_state saved_s = s, saved_u = u;
        __m128i m0 = SHANI_LOAD(p, 0), m1 = SHANI_LOAD(p, 1), m2 = SHANI_LOAD(p, 2),
                m3 = SHANI_LOAD(p, 3);
        __m128i n0 = SHANI_LOAD(q, 0), n1 = SHANI_LOAD(q, 1), n2 = SHANI_LOAD(q, 2),
                n3 = SHANI_LOAD(q, 3);
        SHANI_ROUNDS4(s, m0, 0);
        SHANI_ROUNDS4(u, n0, 0);
        SHANI_ROUNDS4(s, m1, 4);
        SHANI_ROUNDS4(u, n1, 4);
        SHANI_ROUNDS4(s, m2, 8);
        SHANI_ROUNDS4(u, n2, 8);
        SHANI_ROUNDS4(s, m3, 12);
        SHANI_ROUNDS4(u, n3, 12);
        SHANI_SCHEDULE(m0, m1, m2, m3); SHANI_ROUNDS4(s, m0, 16);
        SHANI_SCHEDULE(n0, n1, n2, n3); SHANI_ROUNDS4(u, n0, 16);
        SHANI_SCHEDULE(m1, m2, m3, m0); SHANI_ROUNDS4(s, m1, 20);
        SHANI_SCHEDULE(n1, n2, n3, n0); SHANI_ROUNDS4(u, n1, 20);
        SHANI_SCHEDULE(m2, m3, m0, m1); SHANI_ROUNDS4(s, m2, 24);
        SHANI_SCHEDULE(n2, n3, n0, n1); SHANI_ROUNDS4(u, n2, 24);
        SHANI_SCHEDULE(m3, m0, m1, m2); SHANI_ROUNDS4(s, m3, 28);
        SHANI_SCHEDULE(n3, n0, n1, n2); SHANI_ROUNDS4(u, n3, 28);
        SHANI_SCHEDULE(m0, m1, m2, m3); SHANI_ROUNDS4(s, m0, 32);
        SHANI_SCHEDULE(n0, n1, n2, n3); SHANI_ROUNDS4(u, n0, 32);
        SHANI_SCHEDULE(m1, m2, m3, m0); SHANI_ROUNDS4(s, m1, 36);
        SHANI_SCHEDULE(n1, n2, n3, n0); SHANI_ROUNDS4(u, n1, 36);
        SHANI_SCHEDULE(m2, m3, m0, m1); SHANI_ROUNDS4(s, m2, 40);
        SHANI_SCHEDULE(n2, n3, n0, n1); SHANI_ROUNDS4(u, n2, 40);
        SHANI_SCHEDULE(m3, m0, m1, m2); SHANI_ROUNDS4(s, m3, 44);
        SHANI_SCHEDULE(n3, n0, n1, n2); SHANI_ROUNDS4(u, n3, 44);
        SHANI_SCHEDULE(m0, m1, m2, m3); SHANI_ROUNDS4(s, m0, 48);
        SHANI_SCHEDULE(n0, n1, n2, n3); SHANI_ROUNDS4(u, n0, 48);
        SHANI_SCHEDULE(m1, m2, m3, m0); SHANI_ROUNDS4(s, m1, 52);
        SHANI_SCHEDULE(n1, n2, n3, n0); SHANI_ROUNDS4(u, n1, 52);
        SHANI_SCHEDULE(m2, m3, m0, m1); SHANI_ROUNDS4(s, m2, 56);
        SHANI_SCHEDULE(n2, n3, n0, n1); SHANI_ROUNDS4(u, n2, 56);
        SHANI_SCHEDULE(m3, m0, m1, m2); SHANI_ROUNDS4(s, m3, 60);
        SHANI_SCHEDULE(n3, n0, n1, n2); SHANI_ROUNDS4(u, n3, 60);
        s.s0 = _mm_add_epi32(s.s0, saved_s.s0);
        s.s1 = _mm_add_epi32(s.s1, saved_s.s1);
        u.s0 = _mm_add_epi32(u.s0, saved_u.s0);
        u.s1 = _mm_add_epi32(u.s1, saved_u.s1);
    }
    *st = s;
    *su = u;
}

SHANI_TARGET static shani_state
shani_initial(void)
{
    shani_state st;
    __m128i dcba = _mm_loadu_si128((const __m128i *)shani_iv);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(shani_iv + 4));
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);

    st.s0 = _mm_alignr_epi8(cdab, efgh, 8);    /* ABEF */
    st.s1 = _mm_blend_epi16(efgh, cdab, 0xF0); /* CDGH */
    return st;
}

SHANI_TARGET static void
shani_digest(shani_state st, unsigned char *out)
{
    const __m128i bswap = SHANI_BSWAP;
    __m128i feba = _mm_shuffle_epi32(st.s0, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(st.s1, 0xB1);
    __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);

    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(dcba, bswap));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(hgfe, bswap));
}

/* The padded end of an n-byte message: its last n % 64 bytes, 0x80, zeros and the length in
 * bits, big-endian; returns how many 64-byte blocks (1 or 2). */
static size_t
shani_tail(const unsigned char *data, size_t n, unsigned char tail[128])
{
    size_t rest = n % 64, blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)n * 8;
    int i;

    memset(tail, 0, 128);
    memcpy(tail, data + (n - rest), rest);
    tail[rest] = 0x80;
    for (i = 0; i < 8; i++)
        tail[blocks * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
    return blocks;
}

/* Defines `name`(a, na, b, nb, out_a, out_b): the digests of a (na bytes) and b (nb bytes), any
 * lengths, two blocks at a time while both have blocks left, for one hash's state type and
 * block functions (SHA-256 here, SHA-1 below: the same padding). */
#define SHANI_DEFINE_TWO(name, state_t, initial, blocks1, blocks2, digest)                      \
    SHANI_TARGET static void name(const unsigned char *a, size_t na, const unsigned char *b,    \
                                  size_t nb, unsigned char *out_a, unsigned char *out_b)        \
    {                                                                                           \
        unsigned char tail_a[128], tail_b[128];                                                 \
        size_t ka = shani_tail(a, na, tail_a), kb = shani_tail(b, nb, tail_b);                  \
        size_t ba = na / 64, bb = nb / 64, both = ba < bb ? ba : bb;                            \
        state_t s = initial(), u = s;                                                           \
                                                                                                \
        blocks2(&s, &u, a, b, both);                                                            \
        blocks1(&s, a + 64 * both, ba - both); /* at most one of these two has blocks */        \
        blocks1(&u, b + 64 * both, bb - both);                                                  \
        if (ka == kb) {                                                                         \
            blocks2(&s, &u, tail_a, tail_b, ka);                                                \
        } else {                                                                                \
            blocks1(&s, tail_a, ka);                                                            \
            blocks1(&u, tail_b, kb);                                                            \
        }                                                                                       \
        digest(s, out_a);                                                                       \
        digest(u, out_b);                                                                       \
    }

SHANI_DEFINE_TWO(shani_sha256_two, shani_state, shani_initial, shani_blocks1, shani_blocks2,
                 shani_digest)

SHANI_TARGET static void
shani_sha256(const unsigned char *data, size_t n, unsigned char *out)
{
    unsigned char tail[128];
    size_t k = shani_tail(data, n, tail);
    shani_state s = shani_initial();

    shani_blocks1(&s, data, n / 64);
    shani_blocks1(&s, tail, k);
    shani_digest(s, out);
}

/* SHA-1 in the same way, for the v1 pieces of hybrid torrents: the state is (A, B, C, D) and E
 * in the top lane of a second register. */
typedef struct {
    __m128i abcd, e;
} shani1_state;

/* W[g] over the oldest of the four message registers */
#define SHANI1_SCHEDULE(a, b, c, d) \
    a = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(a, b), c), d)

/* Four rounds with round function f: E from the (A, B, C, D) of four rounds before (prev). */
#define SHANI1_ROUNDS4(st, prev, w, f)                                      \
    do {                                                                    \
        __m128i e_ = _mm_sha1nexte_epu32(prev, w);                          \
        prev = (st).abcd;                                                   \
        (st).abcd = _mm_sha1rnds4_epu32((st).abcd, e_, f);                  \
    } while (0)

/* The 80 rounds of one 64-byte block at p into st (a statement list; needs bswap1 in scope). */
#define SHANI1_BLOCK(st, p)                                                                     \
    do {                                                                                        \
        __m128i w0 = SHANI_LOAD1(p, 0), w1 = SHANI_LOAD1(p, 1), w2 = SHANI_LOAD1(p, 2),         \
                w3 = SHANI_LOAD1(p, 3);                                                         \
        __m128i prev = (st).abcd, saved_e = (st).e, saved_abcd = (st).abcd;                    \
        (st).abcd = _mm_sha1rnds4_epu32((st).abcd, _mm_add_epi32((st).e, w0), 0);             \
        SHANI1_ROUNDS4(st, prev, w1, 0);                                                        \
        SHANI1_ROUNDS4(st, prev, w2, 0);                                                        \
        SHANI1_ROUNDS4(st, prev, w3, 0);                                                        \
        SHANI1_SCHEDULE(w0, w1, w2, w3); SHANI1_ROUNDS4(st, prev, w0, 0);                       \
        SHANI1_SCHEDULE(w1, w2, w3, w0); SHANI1_ROUNDS4(st, prev, w1, 1);                       \
        SHANI1_SCHEDULE(w2, w3, w0, w1); SHANI1_ROUNDS4(st, prev, w2, 1);                       \
        SHANI1_SCHEDULE(w3, w0, w1, w2); SHANI1_ROUNDS4(st, prev, w3, 1);                       \
        SHANI1_SCHEDULE(w0, w1, w2, w3); SHANI1_ROUNDS4(st, prev, w0, 1);                       \
        SHANI1_SCHEDULE(w1, w2, w3, w0); SHANI1_ROUNDS4(st, prev, w1, 1);                       \
        SHANI1_SCHEDULE(w2, w3, w0, w1); SHANI1_ROUNDS4(st, prev, w2, 2);                       \
        SHANI1_SCHEDULE(w3, w0, w1, w2); SHANI1_ROUNDS4(st, prev, w3, 2);                       \
        SHANI1_SCHEDULE(w0, w1, w2, w3); SHANI1_ROUNDS4(st, prev, w0, 2);                       \
        SHANI1_SCHEDULE(w1, w2, w3, w0); SHANI1_ROUNDS4(st, prev, w1, 2);                       \
        SHANI1_SCHEDULE(w2, w3, w0, w1); SHANI1_ROUNDS4(st, prev, w2, 2);                       \
        SHANI1_SCHEDULE(w3, w0, w1, w2); SHANI1_ROUNDS4(st, prev, w3, 3);                       \
        SHANI1_SCHEDULE(w0, w1, w2, w3); SHANI1_ROUNDS4(st, prev, w0, 3);                       \
        SHANI1_SCHEDULE(w1, w2, w3, w0); SHANI1_ROUNDS4(st, prev, w1, 3);                       \
        SHANI1_SCHEDULE(w2, w3, w0, w1); SHANI1_ROUNDS4(st, prev, w2, 3);                       \
        SHANI1_SCHEDULE(w3, w0, w1, w2); SHANI1_ROUNDS4(st, prev, w3, 3);                       \
        (st).e = _mm_sha1nexte_epu32(prev, saved_e);                                            \
        (st).abcd = _mm_add_epi32((st).abcd, saved_abcd);                                       \
    } while (0)

#define SHANI_LOAD1(p, j) _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16 * (j))), bswap1)
#define SHANI1_BSWAP _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL)

SHANI_TARGET static void
shani1_blocks1(shani1_state *st, const unsigned char *p, size_t n)
{
    const __m128i bswap1 = SHANI1_BSWAP;
    shani1_state s = *st;

    for (; n; n--, p += 64)
        SHANI1_BLOCK(s, p);
    *st = s;
}

SHANI_TARGET static void
shani1_blocks2(shani1_state *st, shani1_state *su, const unsigned char *p,
               const unsigned char *q, size_t n)
{
    const __m128i bswap1 = SHANI1_BSWAP;
    shani1_state s = *st, u = *su;

    for (; n; n--, p += 64, q += 64) {
        SHANI1_BLOCK(s, p);
        SHANI1_BLOCK(u, q);
    }
    *st = s;
    *su = u;
}

static const uint32_t shani1_iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};

SHANI_TARGET static shani1_state
shani1_initial(void)
{
    shani1_state st;

    st.abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)shani1_iv), 0x1B);
    st.e = _mm_set_epi32((int)shani1_iv[4], 0, 0, 0);
    return st;
}

SHANI_TARGET static void
shani1_digest(shani1_state st, unsigned char *out)
{
    const __m128i bswap1 = SHANI1_BSWAP;
    uint32_t e = (uint32_t)_mm_extract_epi32(st.e, 3);
    int i;

    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(st.abcd, bswap1));
    for (i = 0; i < 4; i++)
        out[16 + i] = (unsigned char)(e >> (24 - 8 * i));
}

SHANI_DEFINE_TWO(shani_sha1_two, shani1_state, shani1_initial, shani1_blocks1, shani1_blocks2,
                 shani1_digest)

/* The SHA-1 of the last, short piece of each of two files (tails a: na and b: nb bytes, each
 * less than `piece`): zero-padded to `piece` bytes, as a hybrid torrent's pad files make it
 * (padded_*), and as it is (last_*). Both padded messages are `piece` bytes, so of the same
 * number of blocks: they are hashed two at a time from start to end, each block of one file's
 * data alongside a block of the other's data or zeros, and each file's state is kept where its
 * whole data blocks end, for the unpadded hash. za and zb are two buffers of piece + 64 zero
 * bytes, left as they were found. */
SHANI_TARGET static void
shani_sha1_tails_two(const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
                     size_t piece, unsigned char *za, unsigned char *zb, unsigned char *padded_a,
                     unsigned char *last_a, unsigned char *padded_b, unsigned char *last_b)
{
    unsigned char tail_a[128], tail_b[128];
    size_t ba = na / 64, bb = nb / 64;
    size_t ka = shani_tail(a, na, tail_a), kb = shani_tail(b, nb, tail_b);
    /* blocks of a padded message: the piece, then the padding of a message of `piece` bytes
     * (one block: 0x80, zeros, its length in bits); za/zb hold its blocks from the file's
     * partial block on */
    size_t total = piece / 64 + 1, i, run;
    uint64_t bits = (uint64_t)piece * 8;
    shani1_state s = shani1_initial(), u = s, s_data = s, u_data = s;
    int j;

    memcpy(za, a + 64 * ba, na % 64);
    memcpy(zb, b + 64 * bb, nb % 64);
    za[64 * (total - ba - 1)] = zb[64 * (total - bb - 1)] = 0x80;
    for (j = 0; j < 8; j++)
        za[64 * (total - ba) - 1 - j] = zb[64 * (total - bb) - 1 - j] =
            (unsigned char)(bits >> (8 * j));
    for (i = 0; i < total; i += run) {
        if (i == ba)
            s_data = s;
        if (i == bb)
            u_data = u;
        run = total - i;
        if (i < ba && ba - i < run)
            run = ba - i;
        if (i < bb && bb - i < run)
            run = bb - i;
        shani1_blocks2(&s, &u, i < ba ? a + 64 * i : za + 64 * (i - ba),
                       i < bb ? b + 64 * i : zb + 64 * (i - bb), run);
    }
    shani1_digest(s, padded_a);
    shani1_digest(u, padded_b);
    if (ka == kb) {
        shani1_blocks2(&s_data, &u_data, tail_a, tail_b, ka);
    } else {
        shani1_blocks1(&s_data, tail_a, ka);
        shani1_blocks1(&u_data, tail_b, kb);
    }
    shani1_digest(s_data, last_a);
    shani1_digest(u_data, last_b);
    memset(za, 0, na % 64);
    memset(zb, 0, nb % 64);
    memset(za + 64 * (total - ba - 1), 0, 64);
    memset(zb + 64 * (total - bb - 1), 0, 64);
}

static int
shani_supported(void)
{
    unsigned int a, b, c, d;

    /* leaf 1: SSSE3 (ECX bit 9) and SSE4.1 (bit 19); leaf 7: SHA (EBX bit 29) */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 9)) || !(c & (1u << 19)))
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;
}
#else
static int
shani_supported(void)
{
    return 0;
}
#endif

static unsigned char pad_hash[MAX_HEIGHT + 1][HASH]; /* root of 2**h zero leaves */
static const unsigned char zeros[BLOCK];

/* OpenSSL's SHA-256 (which == 256) or SHA-1 of n bytes, through the loaded functions. */
static void
openssl_digest(int which, const void *data, size_t n, unsigned char *out)
{
    ctx_t c;

    (which == 256 ? sha256_init_p : sha1_init_p)(&c);
    (which == 256 ? sha256_update_p : sha1_update_p)(&c, data, n);
    (which == 256 ? sha256_final_p : sha1_final_p)(out, &c);
}

static void
sha256(const void *data, size_t n, unsigned char *out)
{
#ifdef HAVE_SHANI_CODE
    if (use_shani) {
        shani_sha256(data, n, out);
        return;
    }
#endif
    openssl_digest(256, data, n, out);
}

/* The SHA-256 (which == 256) or SHA-1 of two whole messages: interleaved with the SHA
 * extensions, else one after the other through OpenSSL. */
static void
digest_two(int which, const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
           unsigned char *out_a, unsigned char *out_b)
{
#ifdef HAVE_SHANI_CODE
    if (use_shani) {
        (which == 256 ? shani_sha256_two : shani_sha1_two)(a, na, b, nb, out_a, out_b);
        return;
    }
#endif
    openssl_digest(which, a, na, out_a);
    openssl_digest(which, b, nb, out_b);
}

/* --- Merkle tree ---------------------------------------------------------------------------- */

/* Hash `n` nodes at tree level `height` up to one root, in place (`nodes` has room for n + 1).
 * Missing nodes on a level are the root of an all-zero subtree of that level. With target >= 0
 * the root is then combined with padding up to level `target` (hashing.py: merkle._reduce). */
static void
reduce(unsigned char *nodes, size_t n, int height, int target, unsigned char *out)
{
    unsigned char pair[2 * HASH];
    size_t i;

    while (n > 1) {
        if (n & 1) {
            memcpy(nodes + n * HASH, pad_hash[height], HASH);
            n++;
        }
        /* the output of pair i lands at 32i, before its input at 64i: no overlap for i >= 1,
         * and for i == 0 the digest is written only after the input is consumed */
        for (i = 0; i < n / 2; i++)
            sha256(nodes + 2 * i * HASH, 2 * HASH, nodes + i * HASH);
        n /= 2;
        height++;
    }
    memcpy(out, nodes, HASH);
    while (target >= 0 && height < target) {
        memcpy(pair, out, HASH);
        memcpy(pair + HASH, pad_hash[height], HASH);
        sha256(pair, 2 * HASH, out);
        height++;
    }
}

/* --- growable byte arrays ------------------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} bytes_t;

static int
grow(bytes_t *b, size_t extra)
{
    size_t cap;
    unsigned char *data;

    if (b->len + extra <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    data = realloc(b->data, cap);
    if (data == NULL)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int
append(bytes_t *b, const unsigned char *data, size_t n)
{
    if (n == 0) /* (b->data may still be NULL) */
        return 0;
    if (grow(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

/* --- one job: a whole file, or a piece-aligned region of one ------------------------------- */

enum { OK = 0, E_MISSING = 1, E_OPEN = 2, E_NOT_REGULAR = 3, E_CHANGED = 4, E_READ = 5, E_NOMEM = 6 };

#define KEY_SIZE 40

/* x as 8 little-endian bytes at p */
static void
put_le64(unsigned char *p, unsigned long long x)
{
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

/* A file's stat key (hashing.stat_key_of): size, mtime_ns, ctime_ns, inode, device. */
static void
pack_key(const struct stat *st, unsigned char *p)
{
    put_le64(p, (unsigned long long)(long long)st->st_size);
    put_le64(p + 8, (unsigned long long)MTIME_NS(*st));
    put_le64(p + 16, (unsigned long long)CTIME_NS(*st));
    put_le64(p + 24, (unsigned long long)st->st_ino);
    put_le64(p + 32, (unsigned long long)st->st_dev);
}

typedef struct {
    const char *path;
    long long size, mtime_ns, offset, length; /* length < 0: the whole file */
    int has_key;                              /* the file read must be the one of `key` */
    unsigned char key[KEY_SIZE];
} job_t;

/* Whether the open file is still the one the job was planned for: its size and time, and with
 * a stat key its ctime, inode and device too. */
static int
planned_file(const job_t *job, const struct stat *st)
{
    unsigned char key[KEY_SIZE];

    if (st->st_size != job->size || MTIME_NS(*st) != job->mtime_ns)
        return 0;
    if (!job->has_key)
        return 1;
    pack_key(st, key);
    return memcmp(key, job->key, KEY_SIZE) == 0;
}

typedef struct {
    int has_root, has_v1, has_last, has_sha256;
    unsigned char root[HASH], last[SHA1_SIZE], sha256[HASH];
    size_t layer_off, layer_len, v1_off, v1_len; /* into the batch's arenas */
} result_t;

typedef struct {
    /* settings of the batch */
    long long piece_length;
    int height, want_v1, want_sha256;
    size_t per_piece;
    /* buffers reused from job to job */
    unsigned char *buf;
    size_t buf_len;
    unsigned char *leaves; /* leaves of the current piece; room for per_piece + 1 */
    size_t n_leaves;
    bytes_t layers, v1s, scratch;
    /* state of the current job */
    ctx_t v1_ctx, whole_ctx;
    long long v1_fill;
    /* two small files at once (run_pair): the second file's buffer, the messages to hash and
     * their digests (leaves, then v1 pieces), and two pieces of zeros for the v1 tails;
     * allocated for the first pair */
    unsigned char *buf2, *digests, *zeros_a, *zeros_b;
    struct message *messages;
} batch_t;

/* A message to hash and where its digest goes. */
struct message {
    const unsigned char *p;
    size_t n;
    unsigned char *out;
};

/* The leaves of the next one or two blocks of the `left` bytes at p into out (one or two
 * hashes); returns the bytes they cover. */
static size_t
leaf_pair(const unsigned char *p, size_t left, unsigned char *out)
{
    size_t n1 = left < BLOCK ? left : BLOCK;
    size_t n2 = left - n1 < BLOCK ? left - n1 : BLOCK;

    if (n2)
        digest_two(256, p, n1, p + n1, n2, out, out + HASH);
    else
        sha256(p, n1, out);
    return n1 + n2;
}

/* One block of a job (16 KiB, or less at the end) whose leaf is hashed: the whole-file hash
 * and the leaf's place in the piece layer. */
static int
feed_block(batch_t *b, const unsigned char *block, size_t n, const unsigned char *leaf)
{
    unsigned char piece[HASH];

    if (b->want_sha256)
        sha256_update_p(&b->whole_ctx, block, n);
    memcpy(b->leaves + b->n_leaves * HASH, leaf, HASH);
    if (++b->n_leaves == b->per_piece) {
        reduce(b->leaves, b->n_leaves, 0, b->height, piece);
        b->n_leaves = 0;
        if (append(&b->layers, piece, HASH) < 0)
            return E_NOMEM;
    }
    return OK;
}

/* n bytes of a job (whole blocks, but for the file's last one): the leaves two at a time
 * (digest_two), each pair fed on while it is in the cache. */
static int
feed_leaves(batch_t *b, const unsigned char *p, size_t n)
{
    unsigned char leaves[2 * HASH];
    size_t i, done;
    int status = OK;

    for (i = 0; i < n && status == OK; i += done) {
        done = leaf_pair(p + i, n - i, leaves);
        status = feed_block(b, p + i, done < BLOCK ? done : BLOCK, leaves);
        if (status == OK && done > BLOCK)
            status = feed_block(b, p + i + BLOCK, done - BLOCK, leaves + HASH);
    }
    return status;
}

/* n bytes of a job for the v1 pieces. run_job cuts its buffers so that n is the rest of the
 * piece begun before, two whole pieces, one, or the start of one: two whole pieces are hashed
 * at once (digest_two), the others through the running context. */
static int
feed_v1(batch_t *b, const unsigned char *p, size_t n)
{
    size_t take;

    if (b->v1_fill == 0 && (long long)n == 2 * b->piece_length) {
        if (grow(&b->v1s, 2 * SHA1_SIZE) < 0)
            return E_NOMEM;
        take = (size_t)b->piece_length;
        digest_two(1, p, take, p + take, take, b->v1s.data + b->v1s.len,
                   b->v1s.data + b->v1s.len + SHA1_SIZE);
        b->v1s.len += 2 * SHA1_SIZE;
        return OK;
    }
    for (; n; n -= take, p += take) {
        take = (long long)n < b->piece_length - b->v1_fill ? n
                                                           : (size_t)(b->piece_length - b->v1_fill);
        sha1_update_p(&b->v1_ctx, p, take);
        b->v1_fill += (long long)take;
        if (b->v1_fill == b->piece_length) {
            if (grow(&b->v1s, SHA1_SIZE) < 0)
                return E_NOMEM;
            sha1_final_p(b->v1s.data + b->v1s.len, &b->v1_ctx);
            b->v1s.len += SHA1_SIZE;
            sha1_init_p(&b->v1_ctx);
            b->v1_fill = 0;
        }
    }
    return OK;
}

/* Close the last piece (v2: its leaves padded to the piece; v1: zero-padded) of a job. */
static int
flush(batch_t *b, result_t *r)
{
    unsigned char piece[HASH];
    long long left;
    size_t take;

    if (b->n_leaves) {
        reduce(b->leaves, b->n_leaves, 0, b->height, piece);
        b->n_leaves = 0;
        if (append(&b->layers, piece, HASH) < 0)
            return E_NOMEM;
    }
    if (!b->want_v1 || r->has_v1) /* (run_pair hashes the v1 pieces itself) */
        return OK;
    r->has_v1 = 1;
    if (b->v1_fill) {
        ctx_t copy;
        memcpy(&copy, &b->v1_ctx, sizeof copy);
        sha1_final_p(r->last, &copy);
        r->has_last = 1;
        for (left = b->piece_length - b->v1_fill; left > 0; left -= (long long)take) {
            take = left < BLOCK ? (size_t)left : BLOCK;
            sha1_update_p(&b->v1_ctx, zeros, take);
        }
        if (grow(&b->v1s, SHA1_SIZE) < 0)
            return E_NOMEM;
        sha1_final_p(b->v1s.data + b->v1s.len, &b->v1_ctx);
        b->v1s.len += SHA1_SIZE;
        b->v1_fill = 0;
    } else if (b->v1s.len > r->v1_off) {
        memcpy(r->last, b->v1s.data + b->v1s.len - SHA1_SIZE, SHA1_SIZE);
        r->has_last = 1;
    }
    return OK;
}

/* The root of a whole file from its leaves or piece layer (hashing.py: FileHasher.finish). */
static int
finish_whole(batch_t *b, const job_t *job, result_t *r)
{
    size_t count;

    if (job->size == 0)
        return OK;
    r->has_root = 1;
    if (job->size <= b->piece_length) {
        /* one piece: the root is over the actual leaves, not padded to the piece's count, and
         * BEP 52 stores no layer */
        if (b->layers.len > r->layer_off) /* exactly one full piece: its root is the root */
            memcpy(r->root, b->layers.data + r->layer_off, HASH);
        else
            reduce(b->leaves, b->n_leaves, 0, -1, r->root);
        b->n_leaves = 0;
        b->layers.len = r->layer_off;
        return OK;
    }
    count = (b->layers.len - r->layer_off) / HASH;
    b->scratch.len = 0;
    if (grow(&b->scratch, (count + 1) * HASH) < 0)
        return E_NOMEM;
    memcpy(b->scratch.data, b->layers.data + r->layer_off, count * HASH);
    reduce(b->scratch.data, count, b->height, -1, r->root);
    return OK;
}

/* Start a job: its result empty, the running state reset. */
static void
start_job(batch_t *b, result_t *r)
{
    memset(r, 0, sizeof *r);
    r->layer_off = b->layers.len;
    r->v1_off = b->v1s.len;
    b->n_leaves = 0;
    b->v1_fill = 0;
    if (b->want_v1)
        sha1_init_p(&b->v1_ctx);
    if (b->want_sha256)
        sha256_init_p(&b->whole_ctx);
}

/* Open a job's file; it must still be the regular file of the size and time planned. */
static int
open_job(const job_t *job, int *fd, int *err, long long *observed)
{
    struct stat st;

    *fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) {
        *err = errno;
        return (errno == ENOENT || errno == ENOTDIR) ? E_MISSING : E_OPEN;
    }
    if (fstat(*fd, &st) < 0) {
        *err = errno;
        close(*fd);
        return E_OPEN;
    }
    if (!S_ISREG(st.st_mode)) {
        close(*fd);
        return E_NOT_REGULAR;
    }
    if (!planned_file(job, &st)) {
        *observed = (long long)st.st_size;
        close(*fd);
        return E_CHANGED;
    }
    return OK;
}

/* Up to `want` bytes at `pos` into buf; *fill is how many (fewer where the file ends). The file
 * is closed on an error. */
static int
read_at(int fd, unsigned char *buf, long long pos, long long want, long long *fill, int *err)
{
    ssize_t n;

    for (*fill = 0; *fill < want; *fill += n) {
        n = pread(fd, buf + *fill, (size_t)(want - *fill), (off_t)(pos + *fill));
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n < 0) {
            *err = errno;
            close(fd);
            return E_READ;
        }
        if (n == 0)
            break;
    }
    return OK;
}

/* Close a job's file, read up to `remaining` bytes short; it must not have changed meanwhile. */
static int
close_job(int fd, const job_t *job, long long remaining, int *err, long long *observed)
{
    struct stat after;

    if (fstat(fd, &after) < 0) {
        *err = errno;
        close(fd);
        return E_READ;
    }
    close(fd);
    if (remaining || !planned_file(job, &after)) {
        *observed = (long long)after.st_size;
        return E_CHANGED;
    }
    return OK;
}

/* The end of a job whose bytes were all fed: its last piece, its root, its lengths. */
static int
finish_job(batch_t *b, const job_t *job, result_t *r)
{
    int status;

    if (job->length < 0 && job->size > 0 && job->size <= b->piece_length) {
        /* a one-piece file: its root comes from the leaves still held, before flush pads them */
        status = finish_whole(b, job, r);
        if (status != OK)
            return status;
    }
    status = flush(b, r);
    if (status != OK)
        return status;
    if (job->length < 0 && job->size > b->piece_length) {
        status = finish_whole(b, job, r);
        if (status != OK)
            return status;
    }
    r->layer_len = b->layers.len - r->layer_off;
    r->v1_len = b->v1s.len - r->v1_off;
    if (b->want_sha256) {
        sha256_final_p(r->sha256, &b->whole_ctx);
        r->has_sha256 = 1;
    }
    return OK;
}

static int
run_job(batch_t *b, const job_t *job, result_t *r, int *err, long long *observed)
{
    long long remaining, pos, want, fill;
    size_t i, seg;
    int fd, status;

    start_job(b, r);
    status = open_job(job, &fd, err, observed);
    if (status != OK)
        return status;
    remaining = job->length < 0 ? job->size : job->length;
    pos = job->offset;
    while (remaining > 0) {
        want = remaining < (long long)b->buf_len ? remaining : (long long)b->buf_len;
        status = read_at(fd, b->buf, pos, want, &fill, err);
        if (status != OK)
            return status;
        /* in segments that fit the v1 pieces (feed_v1), each hashed both ways while it is in
         * the cache */
        for (i = 0; i < (size_t)fill; i += seg) {
            size_t left = (size_t)fill - i;

            seg = left;
            if (b->want_v1 && b->v1_fill)
                seg = (long long)left < b->piece_length - b->v1_fill
                          ? left
                          : (size_t)(b->piece_length - b->v1_fill);
            else if (b->want_v1 && (long long)left >= 2 * b->piece_length)
                seg = (size_t)(2 * b->piece_length);
            status = feed_leaves(b, b->buf + i, seg);
            if (status == OK && b->want_v1)
                status = feed_v1(b, b->buf + i, seg);
            if (status != OK) {
                close(fd);
                return status;
            }
        }
        remaining -= fill;
        pos += fill;
        if (fill < want)
            break; /* the file ended early */
    }
    status = close_job(fd, job, remaining, err, observed);
    if (status != OK)
        return status;
    return finish_job(b, job, r);
}

/* --- two small files at once ----------------------------------------------------------------- */

/* With the SHA extensions, two messages cost about what one does (ADR 0009), so two whole small
 * files (each fits the buffer) are read first and hashed together: every leaf and v1 piece of
 * both, two at a time, whole-length ones together and each file's short last one with the
 * other's. The tree, the piece layer and the results are then made as run_job makes them. */

/* Whether a job can be run by run_pair. */
static int
pairable(const batch_t *b, const job_t *job)
{
    return use_shani && job->length < 0 && job->size <= (long long)b->buf_len;
}

/* The most v1 pieces of a pairable file, and one more. */
static size_t
pair_pieces(const batch_t *b)
{
    return b->buf_len / (size_t)b->piece_length + 2;
}

/* The buffers run_pair needs, once per batch. */
static int
pair_buffers(batch_t *b)
{
    size_t leaves = b->buf_len / BLOCK + 1, pieces = pair_pieces(b);

    if (b->buf2 != NULL)
        return OK;
    b->buf2 = PyMem_RawMalloc(b->buf_len);
    b->messages = PyMem_RawMalloc(2 * (leaves + pieces) * sizeof *b->messages);
    b->digests = PyMem_RawMalloc(2 * (leaves * HASH + pieces * SHA1_SIZE));
    if (b->want_v1) {
        b->zeros_a = PyMem_RawCalloc(1, (size_t)b->piece_length + 64);
        b->zeros_b = PyMem_RawCalloc(1, (size_t)b->piece_length + 64);
    }
    if (b->buf2 == NULL || b->messages == NULL || b->digests == NULL ||
        (b->want_v1 && (b->zeros_a == NULL || b->zeros_b == NULL)))
        return E_NOMEM;
    return OK;
}

/* Read a whole small file into buf. */
static int
read_whole(const job_t *job, unsigned char *buf, int *err, long long *observed)
{
    long long fill;
    int fd, status = open_job(job, &fd, err, observed);

    if (status != OK)
        return status;
    status = read_at(fd, buf, 0, job->size, &fill, err);
    if (status != OK)
        return status;
    return close_job(fd, job, job->size - fill, err, observed);
}

#ifdef HAVE_SHANI_CODE
/* One of the two messages being hashed together: its whole blocks, then its padded end. */
struct lane {
    const struct message *m;
    const unsigned char *p; /* the next block */
    size_t left;            /* blocks left in the current part */
    int in_tail;
    unsigned char tail[128];
    size_t tail_blocks;
};

static void
lane_load(struct lane *l, const struct message *m)
{
    l->m = m;
    l->p = m->p;
    l->left = m->n / 64;
    l->tail_blocks = shani_tail(m->p, m->n, l->tail);
    l->in_tail = 0;
    if (l->left == 0) {
        l->p = l->tail;
        l->left = l->tail_blocks;
        l->in_tail = 1;
    }
}

/* After `run` blocks of the lane were hashed; returns whether its message is done. */
static int
lane_advance(struct lane *l, size_t run)
{
    l->p += 64 * run;
    l->left -= run;
    if (l->left)
        return 0;
    if (l->in_tail)
        return 1;
    l->p = l->tail;
    l->left = l->tail_blocks;
    l->in_tail = 1;
    return 0;
}

/* Defines `name`(m, count): the digests of `count` messages of any lengths, two blocks at a
 * time from two lanes; a lane whose message ends takes the next one, so only the end of the
 * last message is hashed alone. */
#define SHANI_DEFINE_MANY(name, state_t, initial, blocks1, blocks2, digest)                     \
    SHANI_TARGET static void name(const struct message *m, size_t count)                        \
    {                                                                                           \
        struct lane l[2];                                                                       \
        state_t s[2];                                                                           \
        size_t next = 0, run;                                                                   \
        int k, active = 0;                                                                      \
                                                                                                \
        for (k = 0; k < 2 && next < count; k++) {                                               \
            lane_load(&l[k], &m[next++]);                                                       \
            s[k] = initial();                                                                   \
            active |= 1 << k;                                                                   \
        }                                                                                       \
        while (active == 3) {                                                                   \
            run = l[0].left < l[1].left ? l[0].left : l[1].left;                                \
            blocks2(&s[0], &s[1], l[0].p, l[1].p, run);                                         \
            for (k = 0; k < 2; k++) {                                                           \
                if (!lane_advance(&l[k], run))                                                  \
                    continue;                                                                   \
                digest(s[k], l[k].m->out);                                                      \
                if (next < count) {                                                             \
                    lane_load(&l[k], &m[next++]);                                               \
                    s[k] = initial();                                                           \
                } else {                                                                        \
                    active &= ~(1 << k);                                                        \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        for (k = 0; k < 2; k++) {                                                               \
            if (!(active >> k & 1))                                                             \
                continue;                                                                       \
            do {                                                                                \
                run = l[k].left;                                                                \
                blocks1(&s[k], l[k].p, run);                                                    \
            } while (!lane_advance(&l[k], run));                                                \
            digest(s[k], l[k].m->out);                                                          \
        }                                                                                       \
    }

SHANI_DEFINE_MANY(shani_sha256_many, shani_state, shani_initial, shani_blocks1, shani_blocks2,
                  shani_digest)
SHANI_DEFINE_MANY(shani_sha1_many, shani1_state, shani1_initial, shani1_blocks1, shani1_blocks2,
                  shani1_digest)
#endif

/* Hash messages two at a time with the SHA extensions (in two lanes, each taking the next
 * message when its own ends), else one after the other. */
static void
digest_messages(int which, const struct message *m, size_t count)
{
    size_t i;

#ifdef HAVE_SHANI_CODE
    if (use_shani) {
        (which == 256 ? shani_sha256_many : shani_sha1_many)(m, count);
        return;
    }
#endif
    for (i = 0; i < count; i++)
        openssl_digest(which, m[i].p, m[i].n, m[i].out);
}

/* The messages of `count` files (data[k], sizes[k]) cut in lengths of `unit`: the whole ones
 * of every file first, then the short last ones; each digest (of `size` bytes) goes to
 * out[k] in file order. Returns the number of messages. */
static size_t
cut_messages(struct message *m, const unsigned char *const *data, const long long *sizes,
             int count, size_t unit, unsigned char *const *out, size_t size)
{
    size_t n = 0, i;
    int k;

    for (k = 0; k < count; k++)
        for (i = 0; (i + 1) * unit <= (size_t)sizes[k]; i++)
            m[n++] = (struct message){data[k] + i * unit, unit, out[k] + i * size};
    for (k = 0; k < count; k++) {
        i = (size_t)sizes[k] / unit;
        if ((size_t)sizes[k] % unit)
            m[n++] = (struct message){data[k] + i * unit, (size_t)sizes[k] % unit, out[k] + i * size};
    }
    return n;
}

/* Hash `count` (1 or 2) whole files already read (data[k]) into their results. */
static int
hash_read(batch_t *b, const job_t *const *jobs, result_t *const *rs,
          const unsigned char *const *data, int count)
{
    size_t leaves = b->buf_len / BLOCK + 1, piece = (size_t)b->piece_length;
    unsigned char *leaf_out[2], *v1_out[2], last[2][SHA1_SIZE];
    long long sizes[2], whole[2];
    size_t n, i, pieces;
    int k, status, tails[2] = {0, 0}, t = 0;

    for (k = 0; k < count; k++) {
        sizes[k] = jobs[k]->size;
        whole[k] = sizes[k] - sizes[k] % b->piece_length;
        leaf_out[k] = b->digests + (size_t)k * leaves * HASH;
        v1_out[k] = b->digests + 2 * leaves * HASH + (size_t)k * pair_pieces(b) * SHA1_SIZE;
        if (whole[k] < sizes[k])
            tails[t++] = k;
    }
    n = cut_messages(b->messages, data, sizes, count, BLOCK, leaf_out, HASH);
    digest_messages(256, b->messages, n);
#ifdef HAVE_SHANI_CODE /* (run_pair runs only with the SHA extensions) */
    if (b->want_v1) {
        /* the whole pieces two at a time, then the short last pieces both ways, together (a
         * lone one with itself) */
        int x = tails[0], y = tails[t ? t - 1 : 0];

        n = cut_messages(b->messages, data, whole, count, piece, v1_out, SHA1_SIZE);
        digest_messages(1, b->messages, n);
        if (t)
            shani_sha1_tails_two(data[x] + whole[x], (size_t)(sizes[x] - whole[x]),
                                 data[y] + whole[y], (size_t)(sizes[y] - whole[y]), piece,
                                 b->zeros_a, b->zeros_b,
                                 v1_out[x] + (size_t)(whole[x] / b->piece_length) * SHA1_SIZE,
                                 last[x],
                                 v1_out[y] + (size_t)(whole[y] / b->piece_length) * SHA1_SIZE,
                                 last[y]);
    }
#endif
    for (k = 0; k < count; k++) {
        result_t *r = rs[k];

        start_job(b, r);
        for (i = 0; (long long)(i * BLOCK) < sizes[k]; i++) {
            size_t len = (size_t)(sizes[k] - (long long)(i * BLOCK));
            status = feed_block(b, data[k] + i * BLOCK, len < BLOCK ? len : BLOCK,
                                leaf_out[k] + i * HASH);
            if (status != OK)
                return status;
        }
        if (b->want_v1) {
            pieces = (size_t)((sizes[k] + b->piece_length - 1) / b->piece_length);
            if (append(&b->v1s, v1_out[k], pieces * SHA1_SIZE) < 0)
                return E_NOMEM;
            r->has_v1 = 1;
            if (sizes[k]) {
                /* the last piece as it is: the tail's, or the last whole piece's */
                memcpy(r->last, whole[k] < sizes[k] ? last[k] : v1_out[k] + (pieces - 1) * SHA1_SIZE,
                       SHA1_SIZE);
                r->has_last = 1;
            }
        }
        status = finish_job(b, jobs[k], r);
        if (status != OK)
            return status;
    }
    return OK;
}

/* Run two pairable jobs. On an error in the second file, the first one's result is complete
 * and *second is set. */
static int
run_pair(batch_t *b, const job_t *ja, result_t *ra, const job_t *jb, result_t *rb, int *err,
         long long *observed, int *second)
{
    const job_t *jobs[2] = {ja, jb};
    result_t *rs[2] = {ra, rb};
    const unsigned char *data[2];
    int status, status_b;

    *second = 0;
    status = pair_buffers(b);
    if (status != OK)
        return status;
    data[0] = b->buf;
    data[1] = b->buf2;
    status = read_whole(ja, b->buf, err, observed);
    if (status != OK)
        return status;
    status_b = read_whole(jb, b->buf2, err, observed);
    status = hash_read(b, jobs, rs, data, status_b == OK ? 2 : 1);
    if (status != OK)
        return status;
    *second = status_b != OK;
    return status_b;
}

/* --- Python interface ----------------------------------------------------------------------- */

static PyObject *
optional_bytes(int present, const unsigned char *data, size_t n)
{
    if (!present)
        Py_RETURN_NONE;
    if (n == 0)
        return PyBytes_FromStringAndSize("", 0);
    return PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)n);
}

static PyObject *
result_tuple(const batch_t *b, const result_t *r)
{
    PyObject *t = PyTuple_New(5);
    PyObject *items[5];
    int i;

    if (t == NULL)
        return NULL;
    items[0] = optional_bytes(r->has_root, r->root, HASH);
    items[1] = optional_bytes(1, b->layers.data + r->layer_off, r->layer_len);
    items[2] = optional_bytes(r->has_v1, b->v1s.data + r->v1_off, r->v1_len);
    items[3] = optional_bytes(r->has_last, r->last, SHA1_SIZE);
    items[4] = optional_bytes(r->has_sha256, r->sha256, HASH);
    for (i = 0; i < 5; i++) {
        if (items[i] == NULL) {
            for (; i < 5; i++)
                Py_XDECREF(items[i]);
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, items[i]);
    }
    return t;
}

/* The file-system encoding of a path (str or bytes) in *out (a new reference); no NUL bytes. */
static int
encode_path(PyObject *path, PyObject **out)
{
    if (!PyUnicode_FSConverter(path, out))
        return -1;
    if ((Py_ssize_t)strlen(PyBytes_AS_STRING(*out)) != PyBytes_GET_SIZE(*out)) {
        PyErr_SetString(PyExc_ValueError, "embedded null byte in a path");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(hash_jobs_doc,
"hash_jobs(jobs, piece_length, v1, sha256, buffer_size) -> (results, error)\n\n"
"Hash each job, a tuple (number, path, size, mtime_ns, offset, length, key) as hashing._Job\n"
"makes them (number unused; path str or bytes; length -1 for the whole file; key None, or the\n"
"40-byte stat key the open file must have, before and after it is read). Each result is\n"
"(root, piece_layer, v1_pieces, v1_last_unpadded, sha256), root None for a region. error is\n"
"None, or (index, kind, errno, observed_size) for the first job that failed (1 missing,\n"
"2 cannot open, 3 not a regular file, 4 changed, 5 cannot read); the results then stop\n"
"before it.");

static PyObject *
hash_jobs(PyObject *self, PyObject *args)
{
    PyObject *jobs_arg, *seq = NULL, *results = NULL, *out = NULL, *error = Py_None;
    PyObject **paths = NULL;
    long long piece_length;
    Py_ssize_t buffer_size, count, i, done = 0;
    int want_v1, want_sha256, status = OK, err = 0;
    long long observed = -1;
    job_t *jobs = NULL;
    result_t *res = NULL;
    batch_t b;

    (void)self;
    memset(&b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "OLppn", &jobs_arg, &piece_length, &want_v1, &want_sha256,
                          &buffer_size))
        return NULL;
    if (!loaded) {
        PyErr_SetString(PyExc_RuntimeError, "_hashcore: OpenSSL's digests are not loaded");
        return NULL;
    }
    if (piece_length < BLOCK || (piece_length & (piece_length - 1))) {
        PyErr_Format(PyExc_ValueError, "bad piece length %lld", piece_length);
        return NULL;
    }
    if (buffer_size < BLOCK || buffer_size > MAX_BUFFER || buffer_size % BLOCK) {
        PyErr_Format(PyExc_ValueError, "bad buffer size %zd", buffer_size);
        return NULL;
    }
    seq = PySequence_Fast(jobs_arg, "jobs must be a sequence");
    if (seq == NULL)
        return NULL;
    count = PySequence_Fast_GET_SIZE(seq);
    jobs = PyMem_Calloc((size_t)count + 1, sizeof *jobs);
    res = PyMem_Calloc((size_t)count + 1, sizeof *res);
    if (jobs == NULL || res == NULL) {
        PyErr_NoMemory();
        goto end;
    }
    /* The jobs are tuples (hashing._Job); `paths` keeps each one's encoded path alive while the
     * GIL is released. */
    paths = PyMem_Calloc((size_t)count + 1, sizeof *paths);
    if (paths == NULL) {
        PyErr_NoMemory();
        goto end;
    }
    for (i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);

        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 7) {
            PyErr_SetString(PyExc_TypeError,
                            "a job is (number, path, size, mtime_ns, offset, length, key)");
            goto end;
        }
        PyObject *key = PyTuple_GET_ITEM(item, 6);
        if (key != Py_None) {
            if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) != KEY_SIZE) {
                PyErr_SetString(PyExc_TypeError, "a job's key is None or 40 bytes");
                goto end;
            }
            jobs[i].has_key = 1;
            memcpy(jobs[i].key, PyBytes_AS_STRING(key), KEY_SIZE);
        }
        if (encode_path(PyTuple_GET_ITEM(item, 1), &paths[i]) < 0)
            goto end;
        jobs[i].path = PyBytes_AS_STRING(paths[i]);
        jobs[i].size = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 2));
        jobs[i].mtime_ns = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 3));
        jobs[i].offset = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 4));
        jobs[i].length = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 5));
        if (PyErr_Occurred())
            goto end;
        if (jobs[i].size < 0 || jobs[i].offset < 0 || jobs[i].offset % piece_length ||
            (jobs[i].length >= 0 && jobs[i].offset + jobs[i].length > jobs[i].size)) {
            PyErr_SetString(PyExc_ValueError,
                            "a job's range is not a piece-aligned part of the file");
            goto end;
        }
    }

    b.piece_length = piece_length;
    b.per_piece = (size_t)(piece_length / BLOCK);
    while ((1LL << b.height) < (long long)b.per_piece)
        b.height++;
    b.want_v1 = want_v1;
    b.want_sha256 = want_sha256;
    b.buf_len = (size_t)buffer_size;
    b.buf = PyMem_RawMalloc(b.buf_len);
    b.leaves = PyMem_RawMalloc((b.per_piece + 1) * HASH);
    if (b.buf == NULL || b.leaves == NULL) {
        PyErr_NoMemory();
        goto end;
    }

    Py_BEGIN_ALLOW_THREADS
    for (done = 0; done < count;) {
        if (done + 1 < count && pairable(&b, &jobs[done]) && pairable(&b, &jobs[done + 1])) {
            int second;
            status = run_pair(&b, &jobs[done], &res[done], &jobs[done + 1], &res[done + 1],
                              &err, &observed, &second);
            if (status != OK) {
                done += second;
                break;
            }
            done += 2;
            continue;
        }
        status = run_job(&b, &jobs[done], &res[done], &err, &observed);
        if (status != OK)
            break;
        done++;
    }
    Py_END_ALLOW_THREADS

    if (status == E_NOMEM) {
        PyErr_NoMemory();
        goto end;
    }
    results = PyList_New(done);
    if (results == NULL)
        goto end;
    for (i = 0; i < done; i++) {
        PyObject *t = result_tuple(&b, &res[i]);
        if (t == NULL)
            goto end;
        PyList_SET_ITEM(results, i, t);
    }
    if (status != OK) {
        error = Py_BuildValue("(niiL)", done, status, err, observed);
        if (error == NULL)
            goto end;
    } else {
        Py_INCREF(error);
    }
    out = Py_BuildValue("(NN)", results, error);
    results = NULL;
end:
    Py_XDECREF(results);
    if (paths != NULL) {
        for (i = 0; i < count; i++)
            Py_XDECREF(paths[i]);
        PyMem_Free(paths);
    }
    Py_XDECREF(seq);
    PyMem_Free(jobs);
    PyMem_Free(res);
    PyMem_RawFree(b.buf);
    PyMem_RawFree(b.leaves);
    PyMem_RawFree(b.buf2);
    PyMem_RawFree(b.messages);
    PyMem_RawFree(b.digests);
    PyMem_RawFree(b.zeros_a);
    PyMem_RawFree(b.zeros_b);
    free(b.layers.data);
    free(b.v1s.data);
    free(b.scratch.data);
    return out;
}

PyDoc_STRVAR(stat_files_doc,
"stat_files(paths, follow_symlinks, keys=False) -> (sizes, mtimes_ns, error[, keys])\n\n"
"stat() (or, without follow_symlinks, lstat()) each path (str or bytes), with the GIL\n"
"released. error is None, or\n"
"(index, kind, errno) for the first path that is missing (kind 1), cannot be stat-ed (2) or\n"
"is not a regular file (3); the lists then stop before it. With keys, also each file's\n"
"(size, mtime_ns, ctime_ns, inode, device) packed as little-endian 64-bit integers\n"
"(struct format '<qqqQQ'), 40 bytes a file.");

static PyObject *
stat_files(PyObject *self, PyObject *args)
{
    PyObject *arg, *seq, *sizes = NULL, *mtimes = NULL, *error = Py_None, *out = NULL;
    PyObject *keys = NULL;
    PyObject **encoded = NULL;
    long long *values = NULL;
    Py_ssize_t count, i, done = 0;
    int status = OK, err = 0, follow, want_keys = 0;
    unsigned char *packed = NULL;

    (void)self;
    if (!PyArg_ParseTuple(args, "Op|p", &arg, &follow, &want_keys))
        return NULL;
    seq = PySequence_Fast(arg, "paths must be a sequence");
    if (seq == NULL)
        return NULL;
    count = PySequence_Fast_GET_SIZE(seq);
    encoded = PyMem_Calloc((size_t)count + 1, sizeof *encoded);
    values = PyMem_Calloc(2 * (size_t)count + 1, sizeof *values);
    if (want_keys)
        packed = PyMem_Calloc(KEY_SIZE * (size_t)count + 1, 1);
    if (encoded == NULL || values == NULL || (want_keys && packed == NULL)) {
        PyErr_NoMemory();
        goto end;
    }
    for (i = 0; i < count; i++) {
        if (encode_path(PySequence_Fast_GET_ITEM(seq, i), &encoded[i]) < 0)
            goto end;
    }
    Py_BEGIN_ALLOW_THREADS
    for (done = 0; done < count; done++) {
        struct stat st;
        const char *path = PyBytes_AS_STRING(encoded[done]);
        if ((follow ? stat(path, &st) : lstat(path, &st)) < 0) {
            err = errno;
            status = (errno == ENOENT || errno == ENOTDIR) ? E_MISSING : E_OPEN;
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            status = E_NOT_REGULAR;
            break;
        }
        values[2 * done] = (long long)st.st_size;
        values[2 * done + 1] = MTIME_NS(st);
        if (packed != NULL) {
            unsigned char *p = packed + KEY_SIZE * done;

            pack_key(&st, p);
        }
    }
    Py_END_ALLOW_THREADS
    sizes = PyList_New(done);
    mtimes = PyList_New(done);
    if (sizes == NULL || mtimes == NULL)
        goto end;
    for (i = 0; i < done; i++) {
        PyObject *size = PyLong_FromLongLong(values[2 * i]);
        PyObject *mtime = PyLong_FromLongLong(values[2 * i + 1]);
        if (size == NULL || mtime == NULL) {
            Py_XDECREF(size);
            Py_XDECREF(mtime);
            goto end;
        }
        PyList_SET_ITEM(sizes, i, size);
        PyList_SET_ITEM(mtimes, i, mtime);
    }
    if (packed != NULL &&
        (keys = PyBytes_FromStringAndSize((const char *)packed, KEY_SIZE * done)) == NULL)
        goto end;
    if (status != OK) {
        error = Py_BuildValue("(nii)", done, status, err);
        if (error == NULL)
            goto end;
    } else {
        Py_INCREF(error);
    }
    if (keys != NULL)
        out = Py_BuildValue("(NNNN)", sizes, mtimes, error, keys);
    else
        out = Py_BuildValue("(NNN)", sizes, mtimes, error);
    sizes = mtimes = keys = NULL;
end:
    Py_XDECREF(sizes);
    Py_XDECREF(mtimes);
    Py_XDECREF(keys);
    if (encoded != NULL) {
        for (i = 0; i < count; i++)
            Py_XDECREF(encoded[i]);
        PyMem_Free(encoded);
    }
    PyMem_Free(values);
    PyMem_Free(packed);
    Py_DECREF(seq);
    return out;
}

PyDoc_STRVAR(load_doc,
"load(library) -> bool\n\n"
"Find OpenSSL's SHA-1 and SHA-256 functions in `library` (a path or a soname, typically the\n"
"_hashlib extension module, whose OpenSSL dlsym finds through its dependencies). True once\n"
"they are found; later calls change nothing.");

static PyObject *
load(PyObject *self, PyObject *arg)
{
    PyObject *encoded;
    void *handle;
    int h;

    (void)self;
    if (loaded)
        Py_RETURN_TRUE;
    if (!PyUnicode_FSConverter(arg, &encoded))
        return NULL;
    handle = dlopen(PyBytes_AS_STRING(encoded), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (handle == NULL)
        handle = dlopen(PyBytes_AS_STRING(encoded), RTLD_NOW | RTLD_LOCAL);
    Py_DECREF(encoded);
    if (handle == NULL)
        Py_RETURN_FALSE;
    sha256_init_p = (init_fn)dlsym(handle, "SHA256_Init");
    sha256_update_p = (update_fn)dlsym(handle, "SHA256_Update");
    sha256_final_p = (final_fn)dlsym(handle, "SHA256_Final");
    sha1_init_p = (init_fn)dlsym(handle, "SHA1_Init");
    sha1_update_p = (update_fn)dlsym(handle, "SHA1_Update");
    sha1_final_p = (final_fn)dlsym(handle, "SHA1_Final");
    if (!sha256_init_p || !sha256_update_p || !sha256_final_p || !sha1_init_p || !sha1_update_p ||
        !sha1_final_p) {
        dlclose(handle);
        Py_RETURN_FALSE;
    }
    /* the handle stays open for the life of the process */
    memset(pad_hash[0], 0, HASH);
    for (h = 0; h < MAX_HEIGHT; h++) {
        unsigned char pair[2 * HASH];
        memcpy(pair, pad_hash[h], HASH);
        memcpy(pair + HASH, pad_hash[h], HASH);
        sha256(pair, 2 * HASH, pad_hash[h + 1]);
    }
    loaded = 1;
    Py_RETURN_TRUE;
}

static PyObject *
digest(PyObject *arg, int which)
{
    Py_buffer view;
    unsigned char out[HASH];

    if (!loaded) {
        PyErr_SetString(PyExc_RuntimeError, "_hashcore: OpenSSL's digests are not loaded");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    openssl_digest(which, view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, which == 256 ? HASH : SHA1_SIZE);
}

PyDoc_STRVAR(sha_extensions_doc,
"sha_extensions(enable=None) -> bool\n\n"
"Whether leaves and whole v1 pieces are hashed with the processor's SHA extensions, two at\n"
"a time (x86-64 with SHA, SSSE3 and SSE4.1). enable=False turns them off (OpenSSL hashes\n"
"everything), enable=True back on where the processor has them; returns the setting now in force.");

static PyObject *
sha_extensions(PyObject *self, PyObject *args)
{
    PyObject *enable = Py_None;

    (void)self;
    if (!PyArg_ParseTuple(args, "|O", &enable))
        return NULL;
    if (enable != Py_None) {
        int want = PyObject_IsTrue(enable);
        if (want < 0)
            return NULL;
        use_shani = want && shani_supported();
    }
    return PyBool_FromLong(use_shani);
}

PyDoc_STRVAR(sha256_two_doc,
"sha256_two(a, b) -> (digest of a, digest of b)\n\n"
"Two SHA-256 digests as the leaves are hashed: interleaved with the SHA extensions when they\n"
"are in use, else through the loaded functions.");

/* sha256_two and sha1_two for Python: (digest of a, digest of b). */
static PyObject *
two_digests(PyObject *args, int which)
{
    Py_buffer a, b;
    unsigned char out[2 * HASH];
    Py_ssize_t size = which == 256 ? HASH : SHA1_SIZE;

    if (!loaded) {
        PyErr_SetString(PyExc_RuntimeError, "_hashcore: OpenSSL's digests are not loaded");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*y*", &a, &b))
        return NULL;
    digest_two(which, a.buf, (size_t)a.len, b.buf, (size_t)b.len, out, out + size);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return Py_BuildValue("(y#y#)", out, size, out + size, size);
}

PyDoc_STRVAR(leaf_hashes_doc,
"leaf_hashes(data) -> bytes\n\n"
"The SHA-256 of each 16 KiB block of data (the last one as is), concatenated: two blocks at\n"
"a time like the engine's leaves, with the GIL released (merkle.leaf_hashes).");

static PyObject *
py_leaf_hashes(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    PyObject *out;
    unsigned char *dst;
    const unsigned char *src;
    size_t n, count, i;

    (void)self;
    if (!loaded) {
        PyErr_SetString(PyExc_RuntimeError, "_hashcore: OpenSSL's digests are not loaded");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    n = (size_t)view.len;
    count = (n + BLOCK - 1) / BLOCK;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * HASH));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    dst = (unsigned char *)PyBytes_AS_STRING(out);
    src = view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < n; dst += 2 * HASH)
        i += leaf_pair(src + i, n - i, dst);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return out;
}

/* The module's functions over digest() and two_digests(), one per algorithm. */
#define DIGEST_FUNCTION(name, impl, which)     \
    static PyObject *name(PyObject *self, PyObject *arg) \
    {                                          \
        (void)self;                            \
        return impl(arg, which);               \
    }
DIGEST_FUNCTION(py_sha256, digest, 256)
DIGEST_FUNCTION(py_sha1, digest, 1)
DIGEST_FUNCTION(py_sha256_two, two_digests, 256)
DIGEST_FUNCTION(py_sha1_two, two_digests, 1)

static PyMethodDef methods[] = {
    {"leaf_hashes", py_leaf_hashes, METH_O, leaf_hashes_doc},
    {"sha1_two", py_sha1_two, METH_VARARGS,
     "sha1_two(a, b) -> (digest of a, digest of b)\n\nTwo SHA-1 digests as whole v1 pieces are "
     "hashed (see sha256_two)."},
    {"sha_extensions", sha_extensions, METH_VARARGS, sha_extensions_doc},
    {"sha256_two", py_sha256_two, METH_VARARGS, sha256_two_doc},
    {"load", load, METH_O, load_doc},
    {"hash_jobs", hash_jobs, METH_VARARGS, hash_jobs_doc},
    {"stat_files", stat_files, METH_VARARGS, stat_files_doc},
    {"sha256", py_sha256, METH_O, "sha256(data) -> the SHA-256 digest, through the loaded functions."},
    {"sha1", py_sha1, METH_O, "sha1(data) -> the SHA-1 digest, through the loaded functions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "owmanifest.manifest._hashcore",
    "The compiled inner loop of owmanifest's hashing engine (see hashing.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__hashcore(void)
{
    use_shani = shani_supported();
    return PyModule_Create(&module);
}
