/*
 * Server certificate validation against a trust list (Part 4 §6.1.3) over OpenSSL's X509_STORE:
 * chain to a trusted certificate, validity period, revocation (when CRLs are present), signature
 * algorithm, key type (RSA of the RSA policies' sizes, or EC), key usage. Internal.
 */
#ifndef UARC_CHANNEL_CERT_TRUST_H
#define UARC_CHANNEL_CERT_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "uarc/types.h"

/*
 * Validates the certificate `der` (the first certificate of `der`, DER).
 *
 * trust_list_dir: a folder whose regular files (and those of its "certs" and "crl" subfolders, the
 * usual OPC UA PKI layout) are trusted certificates (CA or self-signed application certificates)
 * and CRLs, PEM or DER; other files are ignored. The certificate must be one of them or chain to
 * one. When any CRL is present, every certificate of the chain must be covered by its issuer's CRL
 * (self-signed ones excepted). NULL: the certificate itself is the only trusted one (pinned), so
 * only the checks below the trust decision apply.
 *
 * at: the time to check validity periods against, seconds since the epoch; 0: now.
 *
 * Returns Good or the OPC UA verdict: BadCertificateInvalid, BadCertificateUntrusted,
 * BadCertificateChainIncomplete, BadCertificate(Issuer)TimeInvalid, BadCertificate(Issuer)Revoked,
 * BadCertificate(Issuer)RevocationUnknown, BadCertificate(Issuer)UseNotAllowed,
 * BadCertificatePolicyCheckFailed, BadConfigurationError (trust list folder unreadable),
 * BadOutOfMemory. `detail` (NUL-terminated, may be truncated) then names the certificate's subject
 * and the reason.
 */
uarc_status uarc__cert_validate(const uint8_t *der, size_t length, const char *trust_list_dir,
                                int64_t at, char *detail, size_t detail_size);

#endif
