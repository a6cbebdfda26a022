#include <string.h>

#include "uarc/common.h"

UARC_API char *uarc_escape_bytes(char *out, size_t out_size, const uint8_t *data, size_t length)
{
    static const char hex[] = "0123456789abcdef";
    if (out_size == 0)
        return out;
    size_t o = 0;
    for (size_t i = 0; i < length; i++) {
        char piece[5];
        size_t n;
        uint8_t c = data[i];
        if (c == '\\') {
            piece[0] = '\\';
            piece[1] = '\\';
            n = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            piece[0] = (char)c;
            n = 1;
        } else {
            piece[0] = '\\';
            piece[1] = 'x';
            piece[2] = hex[c >> 4];
            piece[3] = hex[c & 15];
            n = 4;
        }
        /* Keep room for "..." and the NUL in case this is not the last piece. */
        size_t reserve = (i + 1 < length) ? 4 : 1;
        if (o + n + reserve > out_size) {
            if (out_size >= 4) {
                while (o + 4 > out_size)
                    o--;
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o < out_size ? o : out_size - 1] = '\0';
    return out;
}
