/* The allowlist: entries kept sorted by ServerUri (length, then bytes) for binary search. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "uarc/allowlist.h"
#include "core/alloc.h"
#include "core/log.h"

typedef struct entry {
    char *server_uri;
    size_t server_uri_length;
    char *endpoint_url; /* NULL: any EndpointUrl */
    size_t endpoint_url_length;
} entry;

struct uarc_allowlist {
    entry *entries;
    size_t count;
    size_t capacity;
};

static int compare_uri(const char *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    if (a_len != b_len)
        return a_len < b_len ? -1 : 1;
    return memcmp(a, b, a_len);
}

UARC_API uarc_allowlist *uarc_allowlist_new(void)
{
    return uarc__calloc(1, sizeof(uarc_allowlist));
}

UARC_API void uarc_allowlist_delete(uarc_allowlist *allowlist)
{
    if (!allowlist)
        return;
    for (size_t i = 0; i < allowlist->count; i++) {
        uarc__free(allowlist->entries[i].server_uri);
        uarc__free(allowlist->entries[i].endpoint_url);
    }
    uarc__free(allowlist->entries);
    uarc__free(allowlist);
}

UARC_API size_t uarc_allowlist_count(const uarc_allowlist *allowlist)
{
    return allowlist ? allowlist->count : 0;
}

/* Index of the first entry whose ServerUri is not less than the given one. */
static size_t lower_bound(const uarc_allowlist *allowlist, const uint8_t *uri, size_t len)
{
    size_t lo = 0, hi = allowlist->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const entry *e = &allowlist->entries[mid];
        if (compare_uri(e->server_uri, e->server_uri_length, uri, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

UARC_API uarc_status uarc_allowlist_add(uarc_allowlist *allowlist, const char *server_uri,
                                        const char *endpoint_url)
{
    if (!allowlist || !server_uri)
        return UARC_BadInvalidArgument;
    size_t uri_len = strlen(server_uri);
    if (uri_len == 0 || uri_len > UARC_RHE_MAX_STRING_LENGTH)
        return UARC_BadInvalidArgument;
    size_t url_len = 0;
    if (endpoint_url) {
        url_len = strlen(endpoint_url);
        if (url_len > UARC_RHE_MAX_STRING_LENGTH ||
            uarc_endpoint_url_check((uarc_view){(const uint8_t *)endpoint_url, url_len}, NULL, 0) !=
                UARC_Good)
            return UARC_BadInvalidArgument;
    }
    if (allowlist->count == allowlist->capacity) {
        size_t cap = allowlist->capacity ? allowlist->capacity * 2 : 8;
        entry *grown = uarc__realloc(allowlist->entries, cap * sizeof(entry));
        if (!grown)
            return UARC_BadOutOfMemory;
        allowlist->entries = grown;
        allowlist->capacity = cap;
    }
    entry e = {uarc__strndup(server_uri, uri_len), uri_len, NULL, url_len};
    if (endpoint_url)
        e.endpoint_url = uarc__strndup(endpoint_url, url_len);
    if (!e.server_uri || (endpoint_url && !e.endpoint_url)) {
        uarc__free(e.server_uri);
        uarc__free(e.endpoint_url);
        return UARC_BadOutOfMemory;
    }
    size_t at = lower_bound(allowlist, (const uint8_t *)server_uri, uri_len);
    memmove(&allowlist->entries[at + 1], &allowlist->entries[at],
            (allowlist->count - at) * sizeof(entry));
    allowlist->entries[at] = e;
    allowlist->count++;
    return UARC_Good;
}

UARC_API uarc_status uarc_allowlist_load_file(uarc_allowlist *allowlist, const char *path,
                                              char *detail, size_t detail_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        uarc__set_detail(detail, detail_size, "cannot open allowlist file %s: %s", path,
                         strerror(errno));
        return UARC_BadNotFound;
    }
    char line[2 * UARC_RHE_MAX_STRING_LENGTH + 64];
    unsigned number = 0;
    uarc_status status = UARC_Good;
    while (fgets(line, sizeof line, f)) {
        number++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            uarc__set_detail(detail, detail_size, "%s:%u: line too long", path, number);
            status = UARC_BadInvalidArgument;
            break;
        }
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        char *end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*s == '\0' || *s == '#')
            continue;
        char *url = s;
        while (*url && !isspace((unsigned char)*url))
            url++;
        if (*url) {
            *url++ = '\0';
            while (isspace((unsigned char)*url))
                url++;
            if (strpbrk(url, " \t")) {
                uarc__set_detail(detail, detail_size,
                                 "%s:%u: expected a ServerUri and at most one EndpointUrl", path,
                                 number);
                status = UARC_BadInvalidArgument;
                break;
            }
        } else {
            url = NULL;
        }
        status = uarc_allowlist_add(allowlist, s, url);
        if (status != UARC_Good) {
            uarc__set_detail(detail, detail_size, "%s:%u: %s", path, number,
                             status == UARC_BadOutOfMemory ? "out of memory"
                             : url ? "invalid ServerUri or EndpointUrl (must be opc.tcp://host...)"
                                   : "invalid ServerUri");
            break;
        }
    }
    if (status == UARC_Good && ferror(f)) {
        uarc__set_detail(detail, detail_size, "error reading %s", path);
        status = UARC_BadNotFound;
    }
    fclose(f);
    return status;
}

UARC_API uarc_status uarc_allowlist_check(const uarc_allowlist *allowlist, const uarc_rhe *hello,
                                          char *reason, size_t reason_size)
{
    uarc_status status = uarc_endpoint_url_check(hello->endpoint_url, reason, reason_size);
    if (status != UARC_Good)
        return status;
    char shown[128];
    if (hello->server_uri.length == 0) {
        uarc__set_detail(reason, reason_size, "ServerUri is empty");
        return UARC_BadTcpEndpointUrlInvalid;
    }
    uarc_escape_bytes(shown, sizeof shown, hello->server_uri.data, hello->server_uri.length);
    if (!allowlist || allowlist->count == 0) {
        uarc__set_detail(reason, reason_size, "ServerUri \"%s\" rejected: the allowlist is empty",
                         shown);
        return UARC_BadTcpEndpointUrlInvalid;
    }
    const uint8_t *uri = hello->server_uri.data;
    size_t len = hello->server_uri.length;
    bool known = false;
    for (size_t i = lower_bound(allowlist, uri, len); i < allowlist->count; i++) {
        const entry *e = &allowlist->entries[i];
        if (compare_uri(e->server_uri, e->server_uri_length, uri, len) != 0)
            break;
        known = true;
        if (!e->endpoint_url ||
            (e->endpoint_url_length == hello->endpoint_url.length &&
             memcmp(e->endpoint_url, hello->endpoint_url.data, e->endpoint_url_length) == 0))
            return UARC_Good;
    }
    if (known) {
        char url[128];
        uarc_escape_bytes(url, sizeof url, hello->endpoint_url.data, hello->endpoint_url.length);
        uarc__set_detail(reason, reason_size,
                         "ServerUri \"%s\" is allowed only with another EndpointUrl, not \"%s\"",
                         shown, url);
    } else {
        uarc__set_detail(reason, reason_size, "ServerUri \"%s\" is not in the allowlist", shown);
    }
    return UARC_BadTcpEndpointUrlInvalid;
}
