/*
 * _nqindex: the verifier's one pass over a manifest's statements, without a Python object per
 * statement (ADR 0008).
 *
 * The input is pyoxigraph's own N-Quads serialization of the statements pyoxigraph parsed from
 * the manifest document (one statement per line, "S P O [G] ." with single spaces): the parser
 * of record stays pyoxigraph's, and each line is the statement's N-Quads form that the
 * one-pass reading of ADR 0006 already used. index() splits the lines and does, per line,
 * what document.manifest_from_stream does per quad:
 *
 *   - a statement in a named graph, or with the proof predicate, is put aside (returned as
 *     N-Quads text, in input order) for split_proofs;
 *   - every other statement is a body statement: the body's lines, sorted by bytes and without
 *     duplicates, joined with "\n" and a final "\n", are its canonical N-Quads (for a body
 *     without blank nodes and triple terms: canonical.canonical_from_lines);
 *   - the body is grouped by subject (sorted lines of one subject are adjacent, as an IRI
 *     cannot contain '>'). A group that is a plain file node (only rdf:type <File>, one plain
 *     path literal without escapes, one "digits"^^xsd:integer size, and one "bep52:" + 64
 *     lowercase hex root exactly when the size is not 0) becomes (path, size, root); a
 *     hasPart statement with an IRI object becomes (subject, object); every other body line
 *     is returned as N-Quads text for the Python reader, which reads it as it reads any
 *     statement.
 *
 * It never refuses a document: where a line is not in that layout, or a body line holds "_:"
 * or "<<" anywhere (blank nodes and triple terms need the full RDFC-1.0 algorithm), it returns
 * None and the caller reads the document the usual way, which gives the answer or the precise
 * error. tests/unit/test_verify_manifest.py and tests/security/test_fuzz.py compare both
 * readings.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;     /* the line, without its "\n" */
    uint32_t n;        /* its length */
    uint32_t s_end;    /* subject: [0, s_end) */
    uint32_t p_end;    /* predicate: [s_end + 1, p_end) */
    uint32_t o_end;    /* object: [p_end + 1, o_end) */
    uint32_t graph;    /* a graph name follows the object */
} line_t;

/* One past the end of the term at s (NULL when there is none, or it is a triple term). */
static const char *
scan_term(const char *s, const char *end, int literal_ok)
{
    if (s >= end)
        return NULL;
    if (*s == '<') {
        if (s + 1 < end && s[1] == '<')
            return NULL; /* a triple term */
        const char *close = memchr(s, '>', (size_t)(end - s));
        if (!close || memchr(s, '\\', (size_t)(close - s)))
            return NULL; /* no IRI holds a backslash: this is not the expected layout */
        return close + 1;
    }
    if (*s == '_') {
        if (s + 1 >= end || s[1] != ':')
            return NULL;
        const char *space = memchr(s, ' ', (size_t)(end - s));
        return space ? space : end;
    }
    if (*s == '"' && literal_ok) {
        s++;
        while (s < end && *s != '"')
            s += (*s == '\\') ? 2 : 1;
        if (s >= end)
            return NULL;
        s++; /* the closing quote */
        if (s < end && *s == '@') {
            const char *space = memchr(s, ' ', (size_t)(end - s));
            return space ? space : end;
        }
        if (s + 2 < end && s[0] == '^' && s[1] == '^' && s[2] == '<') {
            const char *close = memchr(s, '>', (size_t)(end - s));
            return close ? close + 1 : NULL;
        }
        return s;
    }
    return NULL;
}

/* Split one line into its terms; 0 when it is not "S P O [G] ." with single spaces. */
static int
parse_line(line_t *line)
{
    const char *s = line->p, *end = line->p + line->n, *t;
    if (line->n < 4 || end[-2] != ' ' || end[-1] != '.')
        return 0;
    end -= 2; /* " ." */
    if (*s != '<' && *s != '_')
        return 0;
    if (!(t = scan_term(s, end, 0)) || t >= end || *t != ' ')
        return 0;
    line->s_end = (uint32_t)(t - line->p);
    s = t + 1;
    if (*s != '<' || !(t = scan_term(s, end, 0)) || t >= end || *t != ' ')
        return 0;
    line->p_end = (uint32_t)(t - line->p);
    s = t + 1;
    if (!(t = scan_term(s, end, 1)))
        return 0;
    line->o_end = (uint32_t)(t - line->p);
    if (t == end) {
        line->graph = 0;
        return 1;
    }
    if (*t != ' ' || (t[1] != '<' && t[1] != '_'))
        return 0;
    s = t + 1;
    if (!(t = scan_term(s, end, 0)) || t != end)
        return 0;
    line->graph = 1;
    return 1;
}

static int
compare_lines(const void *a, const void *b)
{
    const line_t *x = a, *y = b;
    uint32_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* --- sorting the body ------------------------------------------------------------------------
 * By bytes, as Python sorts bytes. The lines share long prefixes (the dataset IRI) and lie
 * scattered over hundreds of MB once a comparison sort starts moving them, so a plain qsort of
 * the lines is slow on memory, not on comparisons. Instead (MSD by 16-byte chunks): skip the
 * prefix all lines of a range share, read the next 16 bytes of each line into its sort entry
 * (in input order at the top level: one sequential pass), sort the entries by those integers,
 * and sort each run of equal chunks the same way from 16 bytes further on. Small runs, deep
 * ranges and lines that end inside the chunk are sorted by comparing whole lines. */

typedef struct {
    uint64_t k0, k1;
    const line_t *line;
} entry_t;

#define SMALL_RUN 12
#define MAX_DEPTH 4096

static uint64_t
load_be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static int
compare_entries(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->k0 != y->k0)
        return x->k0 < y->k0 ? -1 : 1;
    if (x->k1 != y->k1)
        return x->k1 < y->k1 ? -1 : 1;
    return 0;
}

static int
compare_entry_lines(const void *a, const void *b)
{
    return compare_lines(((const entry_t *)a)->line, ((const entry_t *)b)->line);
}

/* The length of the prefix that every line of the range shares beyond `depth`. */
static size_t
common_prefix(const entry_t *a, size_t n, size_t depth)
{
    const line_t *first = a[0].line;
    size_t end = first->n;
    for (size_t i = 1; i < n && end > depth; i++) {
        const line_t *l = a[i].line;
        size_t m = l->n < end ? l->n : end, k = depth;
        while (k + 8 <= m && memcmp(first->p + k, l->p + k, 8) == 0)
            k += 8;
        while (k < m && first->p[k] == l->p[k])
            k++;
        end = k;
    }
    return end;
}

static void
msd_sort(entry_t *a, size_t n, size_t depth)
{
    if (n < 2)
        return;
    if (n <= SMALL_RUN || depth > MAX_DEPTH) {
        qsort(a, n, sizeof *a, compare_entry_lines);
        return;
    }
    depth = common_prefix(a, n, depth);
    int ended = 0;
    for (size_t i = 0; i < n; i++) {
        const line_t *l = a[i].line;
        unsigned char chunk[16] = {0};
        if (l->n > depth)
            memcpy(chunk, l->p + depth, l->n - depth < 16 ? l->n - depth : 16);
        if (l->n <= depth + 16)
            ended = 1;
        a[i].k0 = load_be64(chunk);
        a[i].k1 = load_be64(chunk + 8);
    }
    qsort(a, n, sizeof *a, compare_entries);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && compare_entries(&a[i], &a[j]) == 0; j++)
            ;
        if (j - i < 2)
            continue;
        if (ended) /* a line ended in this chunk (zero-padded): compare whole lines */
            qsort(a + i, j - i, sizeof *a, compare_entry_lines);
        else
            msd_sort(a + i, j - i, depth + 16);
    }
}

/* --- the body in a few sorted runs ---------------------------------------------------------
 * The plain file statements of a created manifest arrive sorted (plain_lines writes each file's
 * lines in the order of their predicates and the hasPart statements after all of them, for
 * files in the order of their paths): the body is then the few statements pyoxigraph wrote and
 * two long sorted runs. Such a body is sorted by merging its runs, each merge starting with a
 * binary search, so that runs that lie apart (the files' statements sort before the dataset's)
 * are copied, not compared line by line. With more than MAX_RUNS runs, the MSD sort above. */

#define MAX_RUNS 32

/* a[0:na] and b[0:nb], each sorted and not empty, merged into out. */
static void
merge_runs(const line_t *a, size_t na, const line_t *b, size_t nb, line_t *out)
{
    size_t lo = 0, hi = na;

    while (lo < hi) { /* the lines of a that come before b's first */
        size_t mid = lo + (hi - lo) / 2;
        if (compare_lines(&a[mid], &b[0]) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memcpy(out, a, lo * sizeof *a);
    out += lo;
    a += lo;
    na -= lo;
    while (na && nb) {
        if (compare_lines(a, b) <= 0) {
            *out++ = *a++;
            na--;
        } else {
            *out++ = *b++;
            nb--;
        }
    }
    memcpy(out, a, na * sizeof *a);
    memcpy(out + na, b, nb * sizeof *b);
}

/* Sort body[0:n] when it is at most MAX_RUNS ascending runs: neighbouring runs merged pairwise
 * until one is left. 1: sorted; 0: more runs (body untouched); -1: out of memory. */
static int
merge_sorted_runs(line_t *body, size_t n)
{
    size_t starts[MAX_RUNS + 1], count = 0;

    for (size_t i = 0; i < n; i++)
        if (i == 0 || compare_lines(&body[i - 1], &body[i]) > 0) {
            if (count == MAX_RUNS)
                return 0;
            starts[count++] = i;
        }
    starts[count] = n;
    if (count <= 1)
        return 1;
    line_t *tmp = malloc(n * sizeof *tmp), *src = body, *dst = tmp;
    if (!tmp)
        return -1;
    while (count > 1) {
        size_t k = 0;
        for (size_t r = 0; r < count; r += 2) {
            size_t s = starts[r], m = starts[r + 1];
            if (r + 1 == count) /* an odd run out: as it is */
                memcpy(dst + s, src + s, (n - s) * sizeof *src);
            else
                merge_runs(src + s, m - s, src + m, starts[r + 2] - m, dst + s);
            starts[k++] = s;
        }
        starts[k] = n;
        count = k;
        line_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != body)
        memcpy(body, src, n * sizeof *body);
    free(tmp);
    return 1;
}

/* Sort the body lines and drop duplicates, in place; 0 when out of memory. */
static int
sort_lines(line_t *body, Py_ssize_t n, Py_ssize_t *n_unique)
{
    int merged = merge_sorted_runs(body, (size_t)n);
    if (merged < 0)
        return 0;
    if (!merged) {
        entry_t *entries = malloc(sizeof(entry_t) * (size_t)n);
        line_t *sorted = malloc(sizeof(line_t) * (size_t)n);
        if (!entries || !sorted) {
            free(entries);
            free(sorted);
            return 0;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            entries[i].line = &body[i];
        msd_sort(entries, (size_t)n, 0);
        for (Py_ssize_t i = 0; i < n; i++)
            sorted[i] = *entries[i].line;
        free(entries);
        memcpy(body, sorted, sizeof(line_t) * (size_t)n);
        free(sorted);
    }
    Py_ssize_t u = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!u || compare_lines(&body[u - 1], &body[i]) != 0)
            body[u++] = body[i];
    *n_unique = u;
    return 1;
}

static int
same_bytes(const char *p, size_t n, const char *q, size_t m)
{
    return n == m && memcmp(p, q, n) == 0;
}

/* Whether the two bytes `pair` occur in p[0:n]. */
static int
contains(const char *p, size_t n, const char *pair)
{
    const char *end = p + n, *q = p;
    while (q + 1 < end && (q = memchr(q, pair[0], (size_t)(end - q - 1))) != NULL) {
        if (q[1] == pair[1])
            return 1;
        q++;
    }
    return 0;
}

typedef struct {
    Py_buffer type, path, size, root, part, proof, file, integer;
} vocab_t;

#define PRED(l) ((l)->p + (l)->s_end + 1)
#define PRED_LEN(l) ((size_t)((l)->p_end - (l)->s_end - 1))
#define OBJ(l) ((l)->p + (l)->p_end + 1)
#define OBJ_LEN(l) ((size_t)((l)->o_end - (l)->p_end - 1))
#define IS(l, v) same_bytes(PRED(l), PRED_LEN(l), (v).buf, (size_t)(v).len)

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A plain file node: its path, size and root (root[0] < 0 when absent); 0 when not plain. */
static int
plain_file(const line_t *lines, Py_ssize_t count, const vocab_t *v, const char **path,
           size_t *path_len, long long *size, unsigned char *root, int *has_root)
{
    int have_type = 0, have_path = 0, have_size = 0;
    *has_root = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        const line_t *l = &lines[i];
        const char *o = OBJ(l);
        size_t on = OBJ_LEN(l);
        if (IS(l, v->type)) {
            if (have_type || !same_bytes(o, on, v->file.buf, (size_t)v->file.len))
                return 0;
            have_type = 1;
        }
        else if (IS(l, v->path)) {
            if (have_path || on < 2 || o[0] != '"' || o[on - 1] != '"' ||
                memchr(o, '\\', on))
                return 0;
            *path = o + 1;
            *path_len = on - 2;
            have_path = 1;
        }
        else if (IS(l, v->size)) {
            size_t suffix = (size_t)v->integer.len; /* ^^<...#integer> */
            if (have_size || on < suffix + 3 || o[0] != '"' || o[on - suffix - 1] != '"' ||
                memcmp(o + on - suffix, v->integer.buf, suffix) != 0)
                return 0;
            size_t digits = on - suffix - 2;
            if (digits < 1 || digits > 18)
                return 0;
            long long value = 0;
            for (size_t k = 1; k <= digits; k++) {
                if (o[k] < '0' || o[k] > '9')
                    return 0;
                value = value * 10 + (o[k] - '0');
            }
            *size = value;
            have_size = 1;
        }
        else if (IS(l, v->root)) {
            if (*has_root || on != 2 + 6 + 64 || o[0] != '"' || o[on - 1] != '"' ||
                memcmp(o + 1, "bep52:", 6) != 0)
                return 0;
            for (int k = 0; k < 32; k++) {
                int hi = hexval(o[7 + 2 * k]), lo = hexval(o[8 + 2 * k]);
                if (hi < 0 || lo < 0)
                    return 0;
                root[k] = (unsigned char)(hi << 4 | lo);
            }
            *has_root = 1;
        }
        else
            return 0;
    }
    return have_path && have_size && (*has_root == (*size != 0));
}

/* Append the lines, each with its "\n", to a new bytes object. */
static PyObject *
join_lines(line_t **lines, Py_ssize_t count)
{
    size_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        total += lines[i]->n + 1;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!out)
        return NULL;
    char *w = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < count; i++) {
        memcpy(w, lines[i]->p, lines[i]->n);
        w += lines[i]->n;
        *w++ = '\n';
    }
    return out;
}

static PyObject *
decode(const char *p, size_t n)
{
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
}

/* The groups of the sorted, unique body lines: plain files into `files`, hasPart statements
 * into `parts`, everything else into `other`. 1 on success, 0 with an exception set. */
static int
group(line_t *body, Py_ssize_t count, const vocab_t *v, PyObject *files, PyObject *parts,
      line_t ***other, Py_ssize_t *n_other)
{
    line_t *rest = NULL;
    Py_ssize_t i = 0;
    /* lines of the current group that are not hasPart-to-IRI statements, copied together */
    rest = PyMem_Malloc(sizeof(line_t) * (size_t)(count ? count : 1));
    if (!rest) {
        PyErr_NoMemory();
        return 0;
    }
    while (i < count) {
        Py_ssize_t j = i, kept = 0;
        const char *subject = body[i].p;
        size_t subject_len = body[i].s_end;
        PyObject *subject_str = NULL, *objects = NULL;
        while (j < count && same_bytes(body[j].p, body[j].s_end, subject, subject_len)) {
            line_t *l = &body[j];
            if (IS(l, v->part) && OBJ(l)[0] == '<') {
                if (!subject_str) {
                    subject_str = decode(subject + 1, subject_len - 2);
                    objects = subject_str ? PyList_New(0) : NULL;
                    if (!objects || PyDict_SetItem(parts, subject_str, objects) < 0)
                        goto error;
                }
                PyObject *object = decode(OBJ(l) + 1, OBJ_LEN(l) - 2);
                if (!object || PyList_Append(objects, object) < 0) {
                    Py_XDECREF(object);
                    goto error;
                }
                Py_DECREF(object);
            }
            else
                rest[kept++] = *l;
            j++;
        }
        const char *path = NULL;
        size_t path_len = 0;
        long long size = 0;
        unsigned char root[32];
        int has_root = 0;
        if (kept && plain_file(rest, kept, v, &path, &path_len, &size, root, &has_root)) {
            if (!subject_str && !(subject_str = decode(subject + 1, subject_len - 2)))
                goto error;
            PyObject *entry = PyTuple_New(3);
            if (!entry)
                goto error;
            PyTuple_SET_ITEM(entry, 0, decode(path, path_len));
            PyTuple_SET_ITEM(entry, 1, PyLong_FromLongLong(size));
            PyTuple_SET_ITEM(entry, 2, has_root ? PyBytes_FromStringAndSize((const char *)root, 32)
                                                : Py_NewRef(Py_None));
            if (!PyTuple_GET_ITEM(entry, 0) || !PyTuple_GET_ITEM(entry, 1) ||
                !PyTuple_GET_ITEM(entry, 2) || PyDict_SetItem(files, subject_str, entry) < 0) {
                Py_DECREF(entry);
                goto error;
            }
            Py_DECREF(entry);
        }
        else {
            for (Py_ssize_t k = i; k < j; k++) {
                line_t *l = &body[k];
                if (!(IS(l, v->part) && OBJ(l)[0] == '<'))
                    (*other)[(*n_other)++] = l;
            }
        }
        Py_XDECREF(subject_str);
        Py_XDECREF(objects);
        i = j;
        continue;
    error:
        Py_XDECREF(subject_str);
        Py_XDECREF(objects);
        PyMem_Free(rest);
        return 0;
    }
    PyMem_Free(rest);
    return 1;
}

PyDoc_STRVAR(index_doc,
"index(nquads, more, type, path, size, root, part, proof, file, integer)\n"
"\n"
"Read pyoxigraph's N-Quads serialization of a manifest document's statements in one pass,\n"
"with `more` statements in the same form (plain_lines'; b\"\" for none).\n"
"The vocabulary arguments are bytes: the predicates rdf:type, owm:path, dcat:byteSize,\n"
"owm:merkleRoot, dcterms:hasPart, sec:proof and the class owm:File, each in <brackets>, and\n"
"the datatype suffix ^^<xsd:integer>.\n"
"\n"
"Returns (canonical, aside, other, files, parts), or None when this pass has no answer:\n"
"canonical: the body's canonical N-Quads; aside: the statements put aside for the proofs;\n"
"other: the body statements not read here; files: {file IRI: (path, size, root or None)};\n"
"parts: {subject IRI: [hasPart object IRIs]}.");

static PyObject *
nq_index(PyObject *self, PyObject *args)
{
    Py_buffer data[2];
    vocab_t v;
    memset(&v, 0, sizeof v);
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*", &data[0], &data[1], &v.type, &v.path,
                          &v.size, &v.root, &v.part, &v.proof, &v.file, &v.integer))
        return NULL;
    PyObject *result = NULL, *canonical = NULL, *aside = NULL, *other_bytes = NULL;
    PyObject *files = NULL, *parts = NULL;
    line_t *body = NULL;
    line_t **aside_lines = NULL, **body_refs = NULL, **other = NULL;
    Py_ssize_t n_lines = 0, n_body = 0, n_aside = 0, n_other = 0, n_unique = 0;
    int ok = 1;

    /* the lines of both buffers (pyoxigraph's, then those written by plain_lines) */
    for (int part = 0; part < 2; part++) {
        const char *end = (const char *)data[part].buf + data[part].len;
        for (const char *q = data[part].buf; q < end;) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            n_lines++;
            q = nl ? nl + 1 : end;
        }
    }
    body = PyMem_Malloc(sizeof(line_t) * (size_t)(n_lines ? n_lines : 1));
    aside_lines = PyMem_Malloc(sizeof(line_t *) * (size_t)(n_lines ? n_lines : 1));
    if (!body || !aside_lines) {
        PyErr_NoMemory();
        goto done;
    }
    /* the aside lines point into `body` too: they are stored from the end of the array */
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t back = n_lines;
    for (int part = 0; part < 2 && ok; part++) {
        const char *end = (const char *)data[part].buf + data[part].len;
        for (const char *q = data[part].buf; q < end && ok;) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            const char *stop = nl ? nl : end;
            line_t l = {q, 0, 0, 0, 0, 0};
            if ((size_t)(stop - q) > UINT32_MAX) {
                ok = 0;
                break;
            }
            l.n = (uint32_t)(stop - q);
            if (!parse_line(&l))
                ok = 0;
            else if (l.graph || IS(&l, v.proof))
                body[--back] = l;
            else if (contains(l.p, l.n, "_:") || contains(l.p, l.n, "<<"))
                ok = 0; /* blank nodes and triple terms: the usual reading */
            else
                body[n_body++] = l;
            q = nl ? nl + 1 : end;
        }
    }
    if (ok) {
        /* aside lines were stored backwards: their input order is from the end */
        for (Py_ssize_t k = n_lines - 1; k >= back; k--)
            aside_lines[n_aside++] = &body[k];
        ok = sort_lines(body, n_body, &n_unique);
    }
    Py_END_ALLOW_THREADS
    if (!ok || !n_unique) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    body_refs = PyMem_Malloc(sizeof(line_t *) * (size_t)n_unique);
    other = PyMem_Malloc(sizeof(line_t *) * (size_t)n_unique);
    if (!body_refs || !other) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < n_unique; k++)
        body_refs[k] = &body[k];
    if (!(canonical = join_lines(body_refs, n_unique)))
        goto done;
    if (!(aside = join_lines(aside_lines, n_aside)))
        goto done;
    if (!(files = PyDict_New()) || !(parts = PyDict_New()))
        goto done;
    if (!group(body, n_unique, &v, files, parts, &other, &n_other))
        goto done;
    if (!(other_bytes = join_lines(other, n_other)))
        goto done;
    result = PyTuple_Pack(5, canonical, aside, other_bytes, files, parts);

done:
    if (!result && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear(); /* not UTF-8 after all: the usual reading reports it */
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(canonical);
    Py_XDECREF(aside);
    Py_XDECREF(other_bytes);
    Py_XDECREF(files);
    Py_XDECREF(parts);
    PyMem_Free(body);
    PyMem_Free(aside_lines);
    PyMem_Free(body_refs);
    PyMem_Free(other);
    PyBuffer_Release(&data[0]);
    PyBuffer_Release(&data[1]);
    PyBuffer_Release(&v.type);
    PyBuffer_Release(&v.path);
    PyBuffer_Release(&v.size);
    PyBuffer_Release(&v.root);
    PyBuffer_Release(&v.part);
    PyBuffer_Release(&v.proof);
    PyBuffer_Release(&v.file);
    PyBuffer_Release(&v.integer);
    return result;
}

/* --- plain file nodes of the JSON, written as N-Quads (document._plain_file_lines) ------------ */

typedef struct {
    char *p;
    size_t n, cap;
} out_t;

static int
put(out_t *o, const char *p, size_t n)
{
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1 << 16;
        while (cap < o->n + n)
            cap *= 2;
        char *q = PyMem_Realloc(o->p, cap);
        if (!q) {
            PyErr_NoMemory();
            return 0;
        }
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->n, p, n);
    o->n += n;
    return 1;
}

/* The keys of a file node, made once (interned, their hashes kept). */
static PyObject *key_id, *key_type, *key_path, *key_size, *key_root;

/* The UTF-8 of a str that is exactly a str, or NULL (no exception) for anything else. */
static const char *
utf8_of(PyObject *value, Py_ssize_t *n)
{
    if (!value || !PyUnicode_CheckExact(value))
        return NULL;
    const char *p = PyUnicode_AsUTF8AndSize(value, n);
    if (!p)
        PyErr_Clear(); /* a lone surrogate: not valid Unicode, not plain */
    return p;
}

static int
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '~';
}

/* Whether iri is dataset + "#" + the path percent-encoded as quote(path, safe="/") does it
 * (jsonld.file_iri). */
static int
is_file_iri(const char *iri, Py_ssize_t ni, const char *ds, Py_ssize_t nd, const char *path,
            Py_ssize_t np)
{
    static const char hex[] = "0123456789ABCDEF";
    Py_ssize_t i, k;

    if (ni < nd + 1 || memcmp(iri, ds, (size_t)nd) || iri[nd] != '#')
        return 0;
    for (i = 0, k = nd + 1; i < np; i++) {
        unsigned char c = (unsigned char)path[i];
        if (unreserved(c) || c == '/') {
            if (k >= ni || iri[k] != (char)c)
                return 0;
            k++;
        }
        else {
            if (k + 3 > ni || iri[k] != '%' || iri[k + 1] != hex[c >> 4] ||
                iri[k + 2] != hex[c & 15])
                return 0;
            k += 3;
        }
    }
    return k == ni;
}

/* A path that N-Quads writes as it is: no control character, quote or backslash (checked on
 * the UTF-8 bytes: a multi-byte character has none below 0x80). */
static int
plain_literal(const char *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return n > 0;
}

static int
bep52_root(const char *p, Py_ssize_t n)
{
    if (n != 70 || memcmp(p, "bep52:", 6))
        return 0;
    for (Py_ssize_t i = 6; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

PyDoc_STRVAR(plain_lines_doc,
"plain_lines(files, dataset, head, kind, path, size, root, integer) -> (others, lines)\n"
"\n"
"document._plain_file_lines' loop over the files array: the N-Quads lines of each plain file\n"
"node, and the list of the other elements. The text arguments are the fixed parts of the lines\n"
"(bytes) that the Python code puts between the node's values.");

static PyObject *
plain_lines(PyObject *self, PyObject *args)
{
    PyObject *files, *dataset, *others = NULL, *result = NULL;
    Py_buffer head, kind, path_p, size_p, root_p, integer;
    out_t o = {NULL, 0, 0}, parts = {NULL, 0, 0};
    Py_ssize_t nd, count;
    const char *ds;

    if (!PyArg_ParseTuple(args, "O!Uy*y*y*y*y*y*", &PyList_Type, &files, &dataset, &head, &kind,
                          &path_p, &size_p, &root_p, &integer))
        return NULL;
    if (!(ds = PyUnicode_AsUTF8AndSize(dataset, &nd)) || !(others = PyList_New(0)))
        goto done;
    count = PyList_GET_SIZE(files);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *f = PyList_GET_ITEM(files, i);
        Py_ssize_t ni, np, nr = 0, keys;
        const char *iri, *path, *root = NULL;
        PyObject *type, *root_value, *size_value;
        long long size = -1;
        int overflow = 0, plain = 0;
        char digits[24];

        if (PyDict_CheckExact(f) && (keys = PyDict_GET_SIZE(f)) >= 3 && keys <= 5) {
            type = PyDict_GetItemWithError(f, key_type);
            root_value = PyDict_GetItemWithError(f, key_root);
            size_value = PyDict_GetItemWithError(f, key_size);
            iri = utf8_of(PyDict_GetItemWithError(f, key_id), &ni);
            path = utf8_of(PyDict_GetItemWithError(f, key_path), &np);
            if (root_value)
                root = utf8_of(root_value, &nr);
            if (size_value && PyLong_CheckExact(size_value))
                size = PyLong_AsLongLongAndOverflow(size_value, &overflow);
            plain = keys == 3 + (type != NULL) + (root_value != NULL) && iri && path &&
                    size >= 0 && !overflow &&
                    (!type || (PyUnicode_CheckExact(type) &&
                               PyUnicode_CompareWithASCIIString(type, "File") == 0)) &&
                    (!root_value || (root && bep52_root(root, nr))) && plain_literal(path, np) &&
                    is_file_iri(iri, ni, ds, nd, path, np);
            if (PyErr_Occurred())
                goto done;
        }
        if (!plain) {
            if (PyList_Append(others, f) < 0)
                goto done;
            continue;
        }
        /* the file's lines in the order of their predicates (type, byteSize, merkleRoot,
         * path), its hasPart statement with the others after all files: sorted runs */
        int nsize = snprintf(digits, sizeof digits, "%lld", size);
        int ok = !type || (put(&o, "<", 1) && put(&o, iri, (size_t)ni) &&
                           put(&o, kind.buf, (size_t)kind.len));
        ok = ok && put(&o, "<", 1) && put(&o, iri, (size_t)ni) &&
             put(&o, size_p.buf, (size_t)size_p.len) && put(&o, digits, (size_t)nsize) &&
             put(&o, integer.buf, (size_t)integer.len);
        if (ok && root)
            ok = put(&o, "<", 1) && put(&o, iri, (size_t)ni) &&
                 put(&o, root_p.buf, (size_t)root_p.len) && put(&o, root, (size_t)nr) &&
                 put(&o, "\" .\n", 4);
        ok = ok && put(&o, "<", 1) && put(&o, iri, (size_t)ni) &&
             put(&o, path_p.buf, (size_t)path_p.len) && put(&o, path, (size_t)np) &&
             put(&o, "\" .\n", 4) && put(&parts, head.buf, (size_t)head.len) &&
             put(&parts, iri, (size_t)ni) && put(&parts, "> .\n", 4);
        if (!ok)
            goto done;
    }
    {
        /* the two parts copied once into the result (appending the second to the first could
         * hold it twice: ~110 MB at 1,000,000 files) */
        PyObject *lines = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(o.n + parts.n));
        if (lines) {
            if (o.n)
                memcpy(PyBytes_AS_STRING(lines), o.p, o.n);
            if (parts.n)
                memcpy(PyBytes_AS_STRING(lines) + o.n, parts.p, parts.n);
            result = Py_BuildValue("(ON)", others, lines);
        }
    }
done:
    Py_XDECREF(others);
    PyMem_Free(o.p);
    PyMem_Free(parts.p);
    PyBuffer_Release(&head);
    PyBuffer_Release(&kind);
    PyBuffer_Release(&path_p);
    PyBuffer_Release(&size_p);
    PyBuffer_Release(&root_p);
    PyBuffer_Release(&integer);
    return result;
}

static PyMethodDef methods[] = {
    {"index", nq_index, METH_VARARGS, index_doc},
    {"plain_lines", plain_lines, METH_VARARGS, plain_lines_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "owmanifest.manifest._nqindex",
    "The verifier's one pass over a manifest's N-Quads, compiled (see document.py).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__nqindex(void)
{
    if (!key_id) {
        key_id = PyUnicode_InternFromString("id");
        key_type = PyUnicode_InternFromString("type");
        key_path = PyUnicode_InternFromString("path");
        key_size = PyUnicode_InternFromString("byteSize");
        key_root = PyUnicode_InternFromString("merkleRoot");
        if (!key_id || !key_type || !key_path || !key_size || !key_root)
            return NULL;
    }
    return PyModule_Create(&module);
}
