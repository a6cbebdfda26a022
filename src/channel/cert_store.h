/*
 * Trust on first use: a folder that records the first server certificate seen under a name (a
 * ServerUri or an endpoint URL) and holds every later one to it. Internal.
 */
#ifndef UARC_CHANNEL_CERT_STORE_H
#define UARC_CHANNEL_CERT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uarc/types.h"

/*
 * Checks the certificate `der` (its first certificate) against the one recorded for `name` in
 * the folder `dir`, made (mode 0700) when missing.
 *
 * The record is one PEM file per name, "<name with unsafe characters replaced>-<8 hex digits of
 * the name's SHA-256>.pem", led by a comment line giving the name. Removing the file (or replacing
 * it with another certificate, PEM or DER) is how an operator accepts a new certificate.
 *
 * Returns Good when the certificate is the recorded one, or when none was recorded: it is then
 * written and *recorded set. BadCertificateUntrusted when another certificate is recorded,
 * BadConfigurationError when the folder or file cannot be read or written, BadCertificateInvalid
 * when `der` is not a certificate, BadOutOfMemory. `path` (path_size bytes) receives the file's
 * path, `detail` the reason of a failure (both NUL-terminated, may be truncated).
 */
uarc_status uarc__cert_store_check(const char *dir, const char *name, const uint8_t *der,
                                   size_t length, bool *recorded, char *path, size_t path_size,
                                   char *detail, size_t detail_size);

/* The SHA-1 thumbprint of a certificate (Part 6 §6.2.3, what servers and tools display) as 40 hex
 * digits into `out` (at least 41 bytes); "?" when it cannot be computed. */
void uarc__cert_thumbprint(const uint8_t *der, size_t length, char out[41]);

#endif
