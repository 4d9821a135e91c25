/* How many independent messages one core must hash at once to reach its SHA throughput.
 *
 * Built and run by bench/sha_lanes.py, which checks every digest printed here against hashlib
 * (so that no lane can be optimized away unnoticed) and prints the table. Measures, on messages
 * of 16 KiB in the cache:
 *   - SHA-256 and SHA-1 with the x86 SHA extensions, 1 to 4 messages interleaved (owmanifest's
 *     compiled core uses 2: ADR 0009);
 *   - SHA-1 of 16 messages at once in the 16 lanes of AVX-512 registers (not used by
 *     owmanifest; measured for docs/performance.md, "Twelfth session").
 *
 * Usage: sha_lanes MiB   -> lines "name lanes GB/s digest-of-message-0 ... digest-of-message-L-1"
 */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG 16384
#define NMSG 64 /* distinct messages, reused: 1 MiB, in the cache */
#define MAXL 16

static unsigned char data[NMSG * MSG];

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The padded end of a message of MSG bytes: one block (MSG is a multiple of 64). */
static unsigned char pad_block[64];

static void
print_digests(const char *name, int lanes, double gbs, const uint32_t (*words)[8], int nwords)
{
    printf("%s %d %.3f", name, lanes, gbs);
    for (int l = 0; l < lanes; l++) {
        putchar(' ');
        for (int k = 0; k < nwords; k++)
            printf("%08x", words[l][k]);
    }
    putchar('\n');
}

/* --- SHA-256, SHA extensions, L messages interleaved ------------------------------------- */

#define NI __attribute__((target("sha,sse4.1,ssse3")))

/* SHA-256's round constants (FIPS 180-4, 4.2.2): the first 32 bits of the fractional parts of
 * the cube roots of the first 64 primes, computed exactly: the largest x with x^3 <= p * 2^96 is
 * the cube root of p in 32-bit fixed point. */
static uint32_t K256[64];

static void
init_k256(void)
{
    int n = 0;

    for (unsigned p = 2; n < 64; p++) {
        unsigned d = 2;
        while (d * d <= p && p % d)
            d++;
        if (d * d <= p)
            continue; /* not a prime */
        unsigned __int128 target = (unsigned __int128)p << 96, lo = 0, hi = (unsigned __int128)1 << 36;
        while (hi - lo > 1) { /* the largest lo with lo^3 <= target */
            unsigned __int128 mid = (lo + hi) / 2;
            if (mid * mid * mid <= target)
                lo = mid;
            else
                hi = mid;
        }
        K256[n++] = (uint32_t)lo;
    }
}

/* Every lane's statement, for lanes 0..L-1 (constant indices: the compiler keeps registers). */
#define EACH(L, S)                 \
    do {                           \
        _Pragma("GCC unroll 4")    \
        for (int l = 0; l < L; l++) { S; } \
    } while (0)

#define DEFINE_SHA256_NI(name, L)                                                              \
    NI __attribute__((noinline)) static void name(__m128i *s0, __m128i *s1,                   \
                                                  const unsigned char *const *p, size_t n)     \
    {                                                                                          \
        const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);     \
        __m128i a[L], b[L], sa[L], sb[L], m[L][4];                                              \
        EACH(L, a[l] = s0[l]; b[l] = s1[l]);                                                   \
        for (size_t i = 0; i < n; i++) {                                                       \
            EACH(L, sa[l] = a[l]; sb[l] = b[l];                                                \
                 for (int j = 0; j < 4; j++) m[l][j] = _mm_shuffle_epi8(                       \
                     _mm_loadu_si128((const __m128i *)(p[l] + 64 * i + 16 * j)), bswap));      \
            _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++) {                           \
                if (r >= 4)                                                                    \
                    EACH(L, m[l][r & 3] = _mm_sha256msg2_epu32(                                \
                             _mm_add_epi32(_mm_sha256msg1_epu32(m[l][r & 3], m[l][(r + 1) & 3]), \
                                           _mm_alignr_epi8(m[l][(r + 3) & 3], m[l][(r + 2) & 3], 4)), \
                             m[l][(r + 3) & 3]));                                              \
                EACH(L, __m128i t = _mm_add_epi32(m[l][r & 3],                                \
                                                  _mm_loadu_si128((const __m128i *)(K256 + 4 * r))); \
                     b[l] = _mm_sha256rnds2_epu32(b[l], a[l], t);                              \
                     a[l] = _mm_sha256rnds2_epu32(a[l], b[l], _mm_shuffle_epi32(t, 0x0E)));    \
            }                                                                                  \
            EACH(L, a[l] = _mm_add_epi32(a[l], sa[l]); b[l] = _mm_add_epi32(b[l], sb[l]));     \
        }                                                                                      \
        EACH(L, s0[l] = a[l]; s1[l] = b[l]);                                                   \
    }

DEFINE_SHA256_NI(sha256_ni1, 1)
DEFINE_SHA256_NI(sha256_ni2, 2)
DEFINE_SHA256_NI(sha256_ni3, 3)
DEFINE_SHA256_NI(sha256_ni4, 4)

/* --- SHA-1, SHA extensions, L messages interleaved --------------------------------------- */

#define DEFINE_SHA1_NI(name, L)                                                                \
    NI __attribute__((noinline)) static void name(__m128i *abcd, __m128i *e,                   \
                                                  const unsigned char *const *p, size_t n)     \
    {                                                                                          \
        const __m128i bswap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);     \
        __m128i a[L], e0[L], sa[L], se[L], prev[L], m[L][4];                                    \
        EACH(L, a[l] = abcd[l]; e0[l] = e[l]);                                                 \
        for (size_t i = 0; i < n; i++) {                                                       \
            EACH(L, sa[l] = a[l]; se[l] = e0[l];                                               \
                 for (int j = 0; j < 4; j++) m[l][j] = _mm_shuffle_epi8(                       \
                     _mm_loadu_si128((const __m128i *)(p[l] + 64 * i + 16 * j)), bswap));      \
            EACH(L, prev[l] = a[l];                                                            \
                 a[l] = _mm_sha1rnds4_epu32(a[l], _mm_add_epi32(e0[l], m[l][0]), 0));          \
            _Pragma("GCC unroll 20") for (int r = 1; r < 20; r++) {                           \
                if (r >= 4)                                                                    \
                    EACH(L, m[l][r & 3] = _mm_sha1msg2_epu32(                                  \
                             _mm_xor_si128(_mm_sha1msg1_epu32(m[l][r & 3], m[l][(r + 1) & 3]), \
                                           m[l][(r + 2) & 3]),                                 \
                             m[l][(r + 3) & 3]));                                              \
                EACH(L, __m128i x = _mm_sha1nexte_epu32(prev[l], m[l][r & 3]); prev[l] = a[l]; \
                     switch (r / 5) {                                                          \
                     case 0: a[l] = _mm_sha1rnds4_epu32(a[l], x, 0); break;                    \
                     case 1: a[l] = _mm_sha1rnds4_epu32(a[l], x, 1); break;                    \
                     case 2: a[l] = _mm_sha1rnds4_epu32(a[l], x, 2); break;                    \
                     default: a[l] = _mm_sha1rnds4_epu32(a[l], x, 3); break;                   \
                     });                                                                       \
            }                                                                                  \
            EACH(L, e0[l] = _mm_sha1nexte_epu32(prev[l], se[l]);                               \
                 a[l] = _mm_add_epi32(a[l], sa[l]));                                           \
        }                                                                                      \
        EACH(L, abcd[l] = a[l]; e[l] = e0[l]);                                                 \
    }

DEFINE_SHA1_NI(sha1_ni1, 1)
DEFINE_SHA1_NI(sha1_ni2, 2)
DEFINE_SHA1_NI(sha1_ni3, 3)
DEFINE_SHA1_NI(sha1_ni4, 4)

/* One interleaved function of either algorithm: its state is two registers per message. */
typedef void (*ni_fn)(__m128i *, __m128i *, const unsigned char *const *, size_t);

static const uint32_t IV256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
static const uint32_t IV1[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};

/* `lanes` messages at a time through fn, `total` bytes in all; which: 256 or 1. */
NI static void
run_ni(int which, int lanes, ni_fn fn, size_t total)
{
    __m128i x[4], y[4];
    const unsigned char *p[4], *q[4];
    uint32_t out[MAXL][8], w[8];
    size_t rounds = total / ((size_t)lanes * MSG), done = 0;
    double t = now();

    for (size_t r = 0; r < rounds; r++) {
        for (int l = 0; l < lanes; l++) {
            const uint32_t *v = which == 256 ? IV256 : IV1;
            if (which == 256) { /* (A, B, E, F) and (C, D, G, H), as the instructions want them */
                x[l] = _mm_set_epi32((int)v[0], (int)v[1], (int)v[4], (int)v[5]);
                y[l] = _mm_set_epi32((int)v[2], (int)v[3], (int)v[6], (int)v[7]);
            } else { /* (A, B, C, D) and E in the top word */
                x[l] = _mm_set_epi32((int)v[0], (int)v[1], (int)v[2], (int)v[3]);
                y[l] = _mm_set_epi32((int)v[4], 0, 0, 0);
            }
            p[l] = data + MSG * ((r * (size_t)lanes + (size_t)l) % NMSG);
            q[l] = pad_block;
        }
        fn(x, y, p, MSG / 64);
        fn(x, y, q, 1);
        done += (size_t)lanes * MSG;
        if (r + 1 < rounds)
            continue;
        for (int l = 0; l < lanes; l++) { /* the last round's digests, as words */
            _mm_storeu_si128((__m128i *)w, x[l]);
            _mm_storeu_si128((__m128i *)(w + 4), y[l]);
            uint32_t d256[8] = {w[3], w[2], w[7], w[6], w[1], w[0], w[5], w[4]};
            uint32_t d1[8] = {w[3], w[2], w[1], w[0], w[7]};
            memcpy(out[l], which == 256 ? d256 : d1, sizeof d256);
        }
    }
    print_digests(which == 256 ? "sha256-shani" : "sha1-shani", lanes,
                  (double)done / (now() - t) / 1e9, (const uint32_t(*)[8])out,
                  which == 256 ? 8 : 5);
}

/* --- SHA-1, AVX-512: 16 messages in the 16 lanes of each register ------------------------- */

#define X16 __attribute__((target("avx512f,avx512bw")))

/* r[i] holds message i's 16 words; afterwards r[j] holds word j of every message. */
X16 static inline void
transpose16(__m512i r[16])
{
    __m512i t[16], u[16], v[16];

    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int j = 0; j < 4; j++) {
        v[j] = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);
        v[4 + j] = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD);
        v[8 + j] = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
        v[12 + j] = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_i32x4(v[j], v[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_i32x4(v[j], v[8 + j], 0xDD);
        r[4 + j] = _mm512_shuffle_i32x4(v[4 + j], v[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_i32x4(v[4 + j], v[12 + j], 0xDD);
    }
}

X16 __attribute__((noinline)) static void
sha1_x16(__m512i st[5], const unsigned char *const p[16], size_t n)
{
    const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    __m512i a = st[0], b = st[1], c = st[2], d = st[3], e = st[4];

    for (size_t i = 0; i < n; i++) {
        __m512i w[16], a0 = a, b0 = b, c0 = c, d0 = d, e0 = e;

        for (int l = 0; l < 16; l++)
            w[l] = _mm512_loadu_si512((const void *)(p[l] + 64 * i));
        transpose16(w);
        for (int j = 0; j < 16; j++)
            w[j] = _mm512_shuffle_epi8(w[j], bswap);
        _Pragma("GCC unroll 80") for (int t = 0; t < 80; t++) {
            static const uint32_t k[4] = {0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6};
            __m512i x, fx;

            if (t >= 16) {
                x = _mm512_ternarylogic_epi32(w[(t - 3) & 15], w[(t - 8) & 15], w[(t - 14) & 15],
                                              0x96);
                w[t & 15] = _mm512_rol_epi32(_mm512_xor_si512(x, w[t & 15]), 1);
            }
            switch (t / 20) { /* choose, parity, majority, parity */
            case 0: fx = _mm512_ternarylogic_epi32(b, c, d, 0xCA); break;
            case 2: fx = _mm512_ternarylogic_epi32(b, c, d, 0xE8); break;
            default: fx = _mm512_ternarylogic_epi32(b, c, d, 0x96); break;
            }
            x = _mm512_add_epi32(_mm512_add_epi32(e, w[t & 15]), _mm512_set1_epi32((int)k[t / 20]));
            x = _mm512_add_epi32(_mm512_add_epi32(x, fx), _mm512_rol_epi32(a, 5));
            e = d;
            d = c;
            c = _mm512_rol_epi32(b, 30);
            b = a;
            a = x;
        }
        a = _mm512_add_epi32(a, a0);
        b = _mm512_add_epi32(b, b0);
        c = _mm512_add_epi32(c, c0);
        d = _mm512_add_epi32(d, d0);
        e = _mm512_add_epi32(e, e0);
    }
    st[0] = a, st[1] = b, st[2] = c, st[3] = d, st[4] = e;
}

X16 static void
run_sha1_x16(size_t total)
{
    __m512i st[5];
    const unsigned char *p[16], *q[16];
    uint32_t words[5][16], out[MAXL][8];
    size_t rounds = total / (16 * MSG), done = 0;
    double t = now();

    for (size_t r = 0; r < rounds; r++) {
        for (int k = 0; k < 5; k++)
            st[k] = _mm512_set1_epi32((int)IV1[k]);
        for (int l = 0; l < 16; l++) {
            p[l] = data + MSG * ((r * 16 + (size_t)l) % NMSG);
            q[l] = pad_block;
        }
        sha1_x16(st, p, MSG / 64);
        sha1_x16(st, q, 1);
        done += 16 * MSG;
        if (r + 1 == rounds) {
            for (int k = 0; k < 5; k++)
                _mm512_storeu_si512((void *)words[k], st[k]);
            for (int l = 0; l < 16; l++)
                for (int k = 0; k < 5; k++)
                    out[l][k] = words[k][l];
        }
    }
    print_digests("sha1-avx512", 16, (double)done / (now() - t) / 1e9,
                  (const uint32_t(*)[8])out, 5);
}

static int
has_sha_ni(void)
{
    unsigned int a, b, c, d;

    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;
}

int
main(int argc, char **argv)
{
    size_t total = (size_t)(argc > 1 ? atoi(argv[1]) : 1024) << 20;
    uint64_t x = 0x9E3779B97F4A7C15ULL;

    for (size_t i = 0; i < sizeof data; i++) { /* xorshift: the same bytes as sha_lanes.py */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (unsigned char)(x >> 56);
    }
    init_k256();
    pad_block[0] = 0x80;
    for (int j = 0; j < 8; j++)
        pad_block[63 - j] = (unsigned char)(((uint64_t)MSG * 8) >> (8 * j));
    if (has_sha_ni()) {
        ni_fn f256[4] = {sha256_ni1, sha256_ni2, sha256_ni3, sha256_ni4};
        ni_fn f1[4] = {sha1_ni1, sha1_ni2, sha1_ni3, sha1_ni4};
        for (int l = 1; l <= 4; l++)
            run_ni(256, l, f256[l - 1], total);
        for (int l = 1; l <= 4; l++)
            run_ni(1, l, f1[l - 1], total);
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        run_sha1_x16(total);
    return 0;
}
