/*
 * Codec throughput: encode and decode of a ReadResponse with 10,000 DataValues (Double with
 * source and server timestamps) and of a BrowseResponse with 10,000 references (numeric ns=1
 * node ids, 9-character browse and display names). Prints the median of RUNS runs in MB/s of
 * encoded bytes and ns per value. Decoding goes into an arena that is reset between runs (the
 * way a client decodes one response after another); heap decoding is shown for comparison.
 *
 * Usage: bench_codec [runs] [--json]   (default 50 runs)
 *   --json: one JSON line per measurement with the median and p90 (the slower tail) of the runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uarc/uarc.h"

#define VALUES 10000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool json;

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Prints the median (and with --json the p90) of n run times in ns; sorts t. */
static void report(const char *what, double *t, int n, size_t bytes)
{
    double ns = median(t, n), p90 = t[(int)(0.9 * (n - 1) + 0.5)];
    if (json)
        printf("{\"bench\":\"codec\",\"what\":\"%s\",\"bytes\":%zu,\"values\":%d,\"runs\":%d,"
               "\"median_ns\":%.1f,\"p90_ns\":%.1f}\n",
               what, bytes, VALUES, n, ns, p90);
    else
        printf("%-34s %9.1f MB/s  %7.1f ns/value  (%zu bytes, median %.1f us)\n", what,
               (double)bytes / ns * 1e3, ns / VALUES, bytes, ns / 1e3);
}

static void bench(const char *name, const void *value, const uarc_type *type, int runs)
{
    uint8_t *bytes;
    size_t len;
    if (uarc_encode_alloc(value, type, &bytes, &len) != UARC_Good) {
        fprintf(stderr, "%s: encode failed\n", name);
        exit(1);
    }
    double *t = malloc(sizeof(double) * (size_t)runs);
    uint8_t *buf = malloc(len);
    char label[64];

    for (int r = 0; r < runs; r++) {
        size_t off = 0;
        double t0 = now_ns();
        uarc_status s = uarc_encode(value, type, buf, len, &off);
        t[r] = now_ns() - t0;
        if (s != UARC_Good || off != len) {
            fprintf(stderr, "%s: encode failed\n", name);
            exit(1);
        }
    }
    snprintf(label, sizeof label, "%s encode", name);
    report(label, t, runs, len);

    uarc_arena *arena = uarc_arena_new(0);
    uarc_decode_config o = {.arena = arena};
    void *out = malloc(type->size);
    for (int r = 0; r < runs + 1; r++) {
        size_t pos = 0;
        uarc_arena_reset(arena);
        double t0 = now_ns();
        uarc_status s = uarc_decode(bytes, len, &pos, out, type, &o);
        double dt = now_ns() - t0;
        if (s != UARC_Good || pos != len) {
            fprintf(stderr, "%s: decode failed\n", name);
            exit(1);
        }
        if (r > 0) /* the first run grows the arena to its steady size */
            t[r - 1] = dt;
    }
    if (!uarc_equal(value, out, type)) {
        fprintf(stderr, "%s: decoded value differs\n", name);
        exit(1);
    }
    snprintf(label, sizeof label, "%s decode (arena)", name);
    report(label, t, runs, len);
    uarc_arena_delete(arena);

    for (int r = 0; r < runs; r++) {
        size_t pos = 0;
        double t0 = now_ns();
        uarc_status s = uarc_decode(bytes, len, &pos, out, type, NULL);
        t[r] = now_ns() - t0;
        if (s != UARC_Good) {
            fprintf(stderr, "%s: decode failed\n", name);
            exit(1);
        }
        uarc_clear(out, type);
    }
    snprintf(label, sizeof label, "%s decode (heap)", name);
    report(label, t, runs, len);

    free(out);
    free(buf);
    free(t);
    uarc_free(bytes);
}

static uarc_string name9(const char *prefix, int i)
{
    char tmp[16];
    snprintf(tmp, sizeof tmp, "%s%05d", prefix, i % 100000);
    return uarc_string_from(tmp);
}

int main(int argc, char **argv)
{
    int runs = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            runs = atoi(argv[i]);
    }
    if (runs < 1)
        runs = 1;

    uarc_ReadResponse rr;
    uarc_init(&rr, UARC_T(ReadResponse));
    rr.responseHeader.timestamp = uarc_datetime_now();
    rr.resultsSize = VALUES;
    rr.results = calloc(VALUES, sizeof(uarc_data_value));
    rr.diagnosticInfos = UARC_EMPTY;
    for (int i = 0; i < VALUES; i++) {
        uarc_data_value *dv = &rr.results[i];
        double d = i * 0.5;
        uarc_variant_set_scalar(&dv->value, &d, UARC_T(Double));
        dv->has_value = true;
        dv->has_source_timestamp = true;
        dv->source_timestamp = rr.responseHeader.timestamp - i;
        dv->has_server_timestamp = true;
        dv->server_timestamp = rr.responseHeader.timestamp;
    }

    uarc_BrowseResponse br;
    uarc_init(&br, UARC_T(BrowseResponse));
    uarc_BrowseResult *res = calloc(1, sizeof *res);
    br.resultsSize = 1;
    br.results = res;
    br.diagnosticInfos = UARC_EMPTY;
    res->referencesSize = VALUES;
    res->references = calloc(VALUES, sizeof(uarc_ReferenceDescription));
    for (int i = 0; i < VALUES; i++) {
        uarc_ReferenceDescription *r = &res->references[i];
        r->referenceTypeId = uarc_nodeid_numeric(0, UARC_NS0ID_HasComponent);
        r->isForward = true;
        r->nodeId.node_id = uarc_nodeid_numeric(1, 1000 + (uint32_t)i);
        r->browseName.namespace_index = 1;
        r->browseName.name = name9("Node", i);
        r->displayName.text = name9("Disp", i);
        r->nodeClass = UARC_NodeClass_Variable;
        r->typeDefinition.node_id = uarc_nodeid_numeric(0, UARC_NS0ID_BaseDataVariableType);
    }

    if (!json)
        printf("uarc %s, %d runs, %d values per message\n", UARC_VERSION, runs, VALUES);
    bench("ReadResponse", &rr, UARC_T(ReadResponse), runs);
    bench("BrowseResponse", &br, UARC_T(BrowseResponse), runs);
    uarc_clear(&rr, UARC_T(ReadResponse));
    uarc_clear(&br, UARC_T(BrowseResponse));
    return 0;
}
