/*
 * The trust-on-first-use store: the first certificate per name is recorded, later ones must be
 * that one, and the operator accepts a new one by deleting or replacing the file.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "channel/cert_store.h"
#include "channel/crypto.h"
#include "core/alloc.h"

static uint8_t *cert_a, *cert_b;
static size_t cert_a_length, cert_b_length;
static char dir[] = "/tmp/uarc-store-XXXXXX";

static int setup(void **state)
{
    (void)state;
    uint8_t *key;
    size_t key_length;
    if (uarc__crypto_make_certificate("urn:x", NULL, &cert_a, &cert_a_length, &key, &key_length) !=
        UARC_Good)
        return -1;
    uarc__free(key);
    if (uarc__crypto_make_certificate("urn:x", NULL, &cert_b, &cert_b_length, &key, &key_length) !=
        UARC_Good)
        return -1;
    uarc__free(key);
    return mkdtemp(dir) ? 0 : -1;
}

/* Empties the folder (and its "sub" folder) and removes it. */
static int teardown(void **state)
{
    (void)state;
    char sub[64];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    const char *folders[] = {sub, dir};
    for (int i = 0; i < 2; i++) {
        DIR *d = opendir(folders[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", folders[i], e->d_name);
            if (e->d_name[0] != '.')
                unlink(path);
        }
        if (d)
            closedir(d);
        rmdir(folders[i]);
    }
    uarc__free(cert_a);
    uarc__free(cert_b);
    return 0;
}

static uarc_status check(const char *folder, const char *name, const uint8_t *der, size_t length,
                         bool *recorded, char *path, char *detail)
{
    return uarc__cert_store_check(folder, name, der, length, recorded, path, 512, detail, 1024);
}

static void test_first_use_then_held_to_it(void **state)
{
    (void)state;
    bool recorded;
    char path[512], detail[1024];
    assert_int_equal(check(dir, "urn:x", cert_a, cert_a_length, &recorded, path, detail),
                     UARC_Good);
    assert_true(recorded);
    assert_non_null(strstr(path, "/urn_x-"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "urn:x")); /* the file says whose certificate it is */

    assert_int_equal(check(dir, "urn:x", cert_a, cert_a_length, &recorded, path, detail),
                     UARC_Good);
    assert_false(recorded);

    assert_int_equal(check(dir, "urn:x", cert_b, cert_b_length, &recorded, path, detail),
                     UARC_BadCertificateUntrusted);
    assert_false(recorded);
    assert_non_null(strstr(detail, "not the one recorded on first use"));
    assert_non_null(strstr(detail, path));
    char thumbprint[41];
    uarc__cert_thumbprint(cert_b, cert_b_length, thumbprint);
    assert_int_equal(strlen(thumbprint), 40);
    assert_non_null(strstr(detail, thumbprint));

    /* the operator replaces the record with the new certificate (DER will do) */
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(cert_b, 1, cert_b_length, f), cert_b_length);
    fclose(f);
    assert_int_equal(check(dir, "urn:x", cert_b, cert_b_length, &recorded, path, detail),
                     UARC_Good);
    assert_int_equal(check(dir, "urn:x", cert_a, cert_a_length, &recorded, path, detail),
                     UARC_BadCertificateUntrusted);

    /* or deletes it: the next certificate is a first use again */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(check(dir, "urn:x", cert_a, cert_a_length, &recorded, path, detail),
                     UARC_Good);
    assert_true(recorded);
}

/* Names that read alike after the unsafe characters are replaced have records of their own. */
static void test_names_kept_apart(void **state)
{
    (void)state;
    bool recorded;
    char first[512], second[512], detail[1024];
    assert_int_equal(check(dir, "opc.tcp://h:1/a", cert_a, cert_a_length, &recorded, first, detail),
                     UARC_Good);
    assert_int_equal(
        check(dir, "opc.tcp://h:1_a", cert_b, cert_b_length, &recorded, second, detail), UARC_Good);
    assert_true(recorded);
    assert_string_not_equal(first, second);
}

static void test_folder_made_and_bad_input(void **state)
{
    (void)state;
    bool recorded;
    char sub[64], path[512], detail[1024];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(check(sub, "urn:y", cert_a, cert_a_length, &recorded, path, detail),
                     UARC_Good);
    assert_true(recorded);
    assert_int_equal(check(dir, "urn:z", (const uint8_t *)"junk", 4, &recorded, path, detail),
                     UARC_BadCertificateInvalid);
    assert_false(recorded);
    assert_int_equal(
        check("/proc/no/such/folder", "urn:z", cert_a, cert_a_length, &recorded, path, detail),
        UARC_BadConfigurationError);
    assert_non_null(strstr(detail, "/proc/no/such/folder"));
}

/* The DER length of a chain's first certificate, from its header alone. */
static void test_der_sequence_length(void **state)
{
    (void)state;
    uint8_t *cert, *key;
    size_t cert_length, key_length;
    assert_int_equal(uarc__crypto_make_certificate("urn:test:der", "prime256v1", &cert,
                                                   &cert_length, &key, &key_length),
                     UARC_Good);
    uint8_t chain[4096];
    assert_true(2 * cert_length <= sizeof chain);
    memcpy(chain, cert, cert_length);
    memcpy(chain + cert_length, cert, cert_length);
    assert_int_equal(uarc__crypto_der_sequence_length(chain, 2 * cert_length), cert_length);
    assert_int_equal(uarc__crypto_der_sequence_length(cert, cert_length),
                     uarc__crypto_first_certificate(cert, cert_length));
    /* cut short, not a SEQUENCE, indefinite or oversized length forms, tiny inputs */
    assert_int_equal(uarc__crypto_der_sequence_length(cert, cert_length - 1), 0);
    assert_int_equal(uarc__crypto_der_sequence_length((const uint8_t *)"\x31\x00", 2), 0);
    assert_int_equal(uarc__crypto_der_sequence_length((const uint8_t *)"\x30\x80\x00\x00", 4), 0);
    assert_int_equal(
        uarc__crypto_der_sequence_length((const uint8_t *)"\x30\x85\x01\x00\x00\x00\x00", 7), 0);
    assert_int_equal(uarc__crypto_der_sequence_length((const uint8_t *)"\x30\x82\x00", 3), 0);
    assert_int_equal(uarc__crypto_der_sequence_length((const uint8_t *)"\x30", 1), 0);
    assert_int_equal(uarc__crypto_der_sequence_length((const uint8_t *)"\x30\x00", 2), 2);
    assert_int_equal(uarc__crypto_der_sequence_length((const uint8_t *)"\x30\x81\x01\x05", 4), 4);
    uarc__free(cert);
    uarc__crypto_free_secret(key, key_length);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_then_held_to_it),
        cmocka_unit_test(test_der_sequence_length),
        cmocka_unit_test(test_names_kept_apart),
        cmocka_unit_test(test_folder_made_and_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
