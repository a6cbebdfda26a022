#include "channel/cert_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "channel/crypto.h"
#include "core/alloc.h"
#include "core/log.h"

static void say(char *detail, size_t size, const char *fmt, ...) UARC__PRINTF(3, 4);

static void say(char *detail, size_t size, const char *fmt, ...)
{
    if (!size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, size, fmt, ap);
    va_end(ap);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void uarc__cert_thumbprint(const uint8_t *der, size_t length, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(der, length, md, &n, EVP_sha1(), NULL) != 1 || n != 20) {
        strcpy(out, "?");
        return;
    }
    hex(md, 20, out);
}

/* The record's file name: readable for the operator, the hash keeps names that read alike
 * apart ("urn:a/b" and "urn:a_b"). */
static bool record_path(const char *dir, const char *name, char *path, size_t size)
{
    char safe[65];
    size_t n = 0;
    for (const char *p = name; *p && n < sizeof safe - 1; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
        safe[n++] = ok ? ch : '_';
    }
    safe[n] = '\0';
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_length = 0;
    if (EVP_Digest(name, strlen(name), md, &md_length, EVP_sha256(), NULL) != 1)
        return false;
    char tag[9];
    hex(md, 4, tag);
    int w = snprintf(path, size, "%s/%s-%s.pem", dir, safe, tag);
    return w > 0 && (size_t)w < size;
}

/* Writes the certificate as PEM after a comment naming the record, through a temporary file
 * renamed into place, so a reader never sees half a record. */
static uarc_status write_record(const char *path, const char *name, const uint8_t *der,
                                size_t length, char *detail, size_t detail_size)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)length);
    if (!x) {
        say(detail, detail_size, "not a DER certificate");
        return UARC_BadCertificateInvalid;
    }
    char temp[4200];
    snprintf(temp, sizeof temp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f &&
              fprintf(f, "# uarc trust store: the first certificate seen for %s\n", name) > 0 &&
              PEM_write_X509(f, x) == 1;
    int error = ok ? 0 : errno;
    if (f && fclose(f) != 0 && ok) {
        error = errno;
        ok = false;
    } else if (!f && fd >= 0) {
        close(fd);
    }
    X509_free(x);
    /* link, not rename: a record another process wrote meanwhile is kept, not replaced */
    if (ok && link(temp, path) != 0) {
        error = errno;
        ok = false;
    }
    if (fd >= 0)
        unlink(temp);
    if (!ok) {
        say(detail, detail_size, "cannot write the trust store record %s: %s", path,
            strerror(error ? error : EIO));
        return UARC_BadConfigurationError;
    }
    return UARC_Good;
}

uarc_status uarc__cert_store_check(const char *dir, const char *name, const uint8_t *der,
                                   size_t length, bool *recorded, char *path, size_t path_size,
                                   char *detail, size_t detail_size)
{
    *recorded = false;
    say(detail, detail_size, "%s", "");
    say(path, path_size, "%s", "");
    length = uarc__crypto_first_certificate(der, length);
    if (!length) {
        say(detail, detail_size, "not a DER certificate");
        return UARC_BadCertificateInvalid;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        say(detail, detail_size, "cannot make the trust store folder %s: %s", dir, strerror(errno));
        return UARC_BadConfigurationError;
    }
    if (!record_path(dir, name, path, path_size)) {
        say(detail, detail_size, "the trust store path for %s is too long", name);
        return UARC_BadConfigurationError;
    }
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        uarc_status s = write_record(path, name, der, length, detail, detail_size);
        *recorded = s == UARC_Good;
        return s;
    }
    uint8_t *known = NULL;
    size_t known_length = 0;
    uarc_status s = uarc__crypto_load_certificate(path, &known, &known_length);
    if (s != UARC_Good) {
        say(detail, detail_size, "cannot read the trust store record %s (%s)", path,
            uarc_status_name(s));
        return s == UARC_BadOutOfMemory ? s : UARC_BadConfigurationError;
    }
    bool same = known_length == length && memcmp(known, der, length) == 0;
    if (!same) {
        char seen[41], kept[41];
        uarc__cert_thumbprint(der, length, seen);
        uarc__cert_thumbprint(known, known_length, kept);
        say(detail, detail_size,
            "the certificate presented for %s (thumbprint %s) is not the one recorded on first "
            "use (thumbprint %s, in %s); if the server's certificate was replaced on purpose, "
            "delete or replace that file",
            name, seen, kept, path);
    }
    uarc__free(known);
    return same ? UARC_Good : UARC_BadCertificateUntrusted;
}
