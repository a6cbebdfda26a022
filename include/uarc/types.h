/*
 * OPC UA values: the 25 built-in types as open structs, the structured and enumerated types
 * generated from Opc.Ua.Types.bsd (uarc/types_generated.h), their descriptors, and the one
 * table-driven binary codec (OPC UA Part 6 §5.2) plus the text forms (NodeId, Guid, DateTime,
 * JSON).
 *
 * Values and ownership: a value owns everything its pointers reach. uarc_init() zero-fills (a
 * zero-filled value is always valid: null strings, null arrays, numeric NodeId ns=0;i=0, empty
 * Variant); uarc_clear() frees what the value owns and zero-fills it again. Heap memory comes from
 * the allocator hook (uarc_set_allocator). A value decoded into an arena owns nothing: its memory
 * belongs to the arena; never uarc_clear() it, release the arena instead.
 *
 * Null and empty: a string or array with data == NULL is null (encoded length -1); an empty one has
 * length 0 and data == UARC_EMPTY. Both are distinct on the wire and after decoding.
 *
 * Threads: values and arenas belong to one thread; the type tables are read-only and shared.
 */
#ifndef UARC_TYPES_H
#define UARC_TYPES_H

#include "uarc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Data pointer of an empty (not null) string or array. Never dereferenced, never freed. */
#define UARC_EMPTY ((void *)0x01)

/* ---- Built-in types ---------------------------------------------------------------------- */

/* String: UTF-8 bytes, not NUL-terminated. */
typedef struct uarc_string {
    size_t length;
    uint8_t *data; /* NULL: null string; UARC_EMPTY: empty string */
} uarc_string;

typedef uarc_string uarc_bytestring;
typedef uarc_string uarc_xml_element;

/* DateTime: 100 ns ticks since 1601-01-01T00:00:00Z. */
typedef int64_t uarc_datetime;

/* Ticks at 1970-01-01T00:00:00Z, for converting to and from Unix time. */
#define UARC_DATETIME_UNIX_EPOCH       INT64_C(116444736000000000)
#define UARC_DATETIME_TICKS_PER_SECOND INT64_C(10000000)

typedef struct uarc_guid {
    uint32_t data1;
    uint16_t data2;
    uint16_t data3;
    uint8_t data4[8];
} uarc_guid;

typedef enum uarc_nodeid_type {
    UARC_NODEID_NUMERIC = 0,
    UARC_NODEID_STRING = 3,
    UARC_NODEID_GUID = 4,
    UARC_NODEID_BYTESTRING = 5,
} uarc_nodeid_type;

typedef struct uarc_nodeid {
    uint16_t namespace_index;
    uarc_nodeid_type identifier_type;
    union {
        uint32_t numeric;
        uarc_string string;
        uarc_guid guid;
        uarc_bytestring bytestring;
    } identifier;
} uarc_nodeid;

typedef struct uarc_expanded_nodeid {
    uarc_nodeid node_id;
    uarc_string namespace_uri; /* NULL data: not given (node_id.namespace_index applies) */
    uint32_t server_index;     /* 0: the local server */
} uarc_expanded_nodeid;

typedef struct uarc_qualified_name {
    uint16_t namespace_index;
    uarc_string name;
} uarc_qualified_name;

typedef struct uarc_localized_text {
    uarc_string locale; /* null: not given */
    uarc_string text;   /* null: not given */
} uarc_localized_text;

struct uarc_type;

typedef enum uarc_extension_object_encoding {
    UARC_EXTENSION_OBJECT_EMPTY = 0,  /* no body; content.encoded.type_id may be set */
    UARC_EXTENSION_OBJECT_BINARY = 1, /* body bytes of a type the codec does not know */
    UARC_EXTENSION_OBJECT_XML = 2,    /* XML body bytes */
    UARC_EXTENSION_OBJECT_DECODED = 3 /* a value of a known type */
} uarc_extension_object_encoding;

typedef struct uarc_extension_object {
    uarc_extension_object_encoding encoding;
    union {
        struct {
            uarc_nodeid type_id; /* the encoding id as received */
            uarc_bytestring body;
        } encoded;
        struct {
            const struct uarc_type *type;
            void *data; /* one value of `type`, owned */
        } decoded;
    } content;
} uarc_extension_object;

typedef struct uarc_variant {
    const struct uarc_type *type; /* NULL: empty Variant */
    void *data;                   /* scalar: one value; array: array_length values, NULL or
                                     UARC_EMPTY */
    size_t array_length;
    bool is_array;
    size_t array_dimensions_size; /* 0 for one-dimensional arrays */
    int32_t *array_dimensions;    /* product must equal array_length */
} uarc_variant;

typedef struct uarc_data_value {
    uarc_variant value;
    uarc_status status;
    uarc_datetime source_timestamp;
    uarc_datetime server_timestamp;
    uint16_t source_picoseconds;
    uint16_t server_picoseconds;
    bool has_value;
    bool has_status;
    bool has_source_timestamp;
    bool has_server_timestamp;
    bool has_source_picoseconds;
    bool has_server_picoseconds;
} uarc_data_value;

typedef struct uarc_diagnostic_info {
    bool has_symbolic_id;
    bool has_namespace_uri;
    bool has_localized_text;
    bool has_locale;
    bool has_additional_info;
    bool has_inner_status_code;
    bool has_inner_diagnostic_info;
    int32_t symbolic_id;
    int32_t namespace_uri;
    int32_t localized_text;
    int32_t locale;
    uarc_string additional_info;
    uarc_status inner_status_code;
    struct uarc_diagnostic_info *inner_diagnostic_info; /* owned; NULL when not given */
} uarc_diagnostic_info;

/* ---- Type descriptors -------------------------------------------------------------------- */

/* How a type is encoded. Built-in kinds equal the built-in type ids of Part 6 (Boolean = 1). */
typedef enum uarc_kind {
    UARC_KIND_BOOLEAN = 1,
    UARC_KIND_SBYTE,
    UARC_KIND_BYTE,
    UARC_KIND_INT16,
    UARC_KIND_UINT16,
    UARC_KIND_INT32,
    UARC_KIND_UINT32,
    UARC_KIND_INT64,
    UARC_KIND_UINT64,
    UARC_KIND_FLOAT,
    UARC_KIND_DOUBLE,
    UARC_KIND_STRING,
    UARC_KIND_DATETIME,
    UARC_KIND_GUID,
    UARC_KIND_BYTESTRING,
    UARC_KIND_XMLELEMENT,
    UARC_KIND_NODEID,
    UARC_KIND_EXPANDEDNODEID,
    UARC_KIND_STATUSCODE,
    UARC_KIND_QUALIFIEDNAME,
    UARC_KIND_LOCALIZEDTEXT,
    UARC_KIND_EXTENSIONOBJECT,
    UARC_KIND_DATAVALUE,
    UARC_KIND_VARIANT,
    UARC_KIND_DIAGNOSTICINFO,
    UARC_KIND_ENUM,  /* a C enum, encoded as Int32 */
    UARC_KIND_STRUCT /* members in order */
} uarc_kind;

typedef struct uarc_member {
    const char *name;             /* lowerCamelCase field name */
    const struct uarc_type *type; /* element type for arrays */
    uint32_t offset;              /* of the value, or of the array pointer */
    uint32_t size_offset;         /* arrays: of the size_t element count */
    bool is_array;
} uarc_member;

typedef struct uarc_type {
    const char *name;            /* as in the schema: "ReadRequest", "Double" */
    uint32_t type_id;            /* numeric id of the DataType node in namespace 0 */
    uint32_t binary_encoding_id; /* numeric id of its DefaultBinary encoding; 0 if none */
    uint32_t size;               /* sizeof the C type */
    uint8_t kind;                /* uarc_kind */
    bool pointer_free;           /* copy and compare are plain memory operations */
    uint16_t index;              /* position in uarc_types[] */
    uint16_t member_count;
    const uarc_member *members;
} uarc_type;

#ifdef __cplusplus
}
#endif

#include "uarc/types_generated.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The descriptor of a type by its schema name: UARC_T(ReadRequest), UARC_T(Double). */
#define UARC_T(name) (&uarc_types[UARC_TYPE_##name])

/* The type whose DefaultBinary encoding has this numeric id in namespace 0; NULL if none. */
UARC_API const uarc_type *uarc_type_by_encoding_id(uint32_t binary_encoding_id);

/* The type whose DataType node has this numeric id in namespace 0; NULL if none. */
UARC_API const uarc_type *uarc_type_by_type_id(uint32_t type_id);

/* The type with this schema name ("ReadResponse"); NULL if none. */
UARC_API const uarc_type *uarc_type_by_name(const char *name);

/* Name of a value of an enumeration type, as in the schema: "SignAndEncrypt" for
 * uarc_enum_name(UARC_T(MessageSecurityMode), 3). NULL when `type` is not an enumeration (option
 * sets are not: their values combine) or has no value `value`. The string is static. */
UARC_API const char *uarc_enum_name(const uarc_type *type, int32_t value);

/* Name of an attribute id ("Value" for 13); NULL if unknown. The string is static. */
UARC_API const char *uarc_attribute_name(uint32_t attribute_id);

/* ---- Generic operations on any value ----------------------------------------------------- */

/* Zero-fills `value` (a valid, empty value of `type`). Cannot fail. */
UARC_API void uarc_init(void *value, const uarc_type *type);

/* Frees what `value` owns (heap values only, not arena ones) and zero-fills it. */
UARC_API void uarc_clear(void *value, const uarc_type *type);

/* Deep-copies `src` into `dst` (which is overwritten, not cleared first). On failure `dst` is
 * left zero-filled and BadOutOfMemory is returned. `dst` is heap-owned even when `src` is not. */
UARC_API uarc_status uarc_copy(const void *src, void *dst, const uarc_type *type);

/* Deep equality. Floats compare by bit pattern (so NaN equals the same NaN); null and empty
 * strings and arrays differ. */
UARC_API bool uarc_equal(const void *a, const void *b, const uarc_type *type);

/* Allocates one zero-filled value; NULL when out of memory. Free with uarc_delete. */
UARC_API void *uarc_new(const uarc_type *type);
/* Clears and frees a value from uarc_new. NULL is ignored. */
UARC_API void uarc_delete(void *value, const uarc_type *type);

/* Clears `count` values of `type` at `array` and frees the array. NULL and UARC_EMPTY are
 * accepted. */
UARC_API void uarc_array_delete(void *array, size_t count, const uarc_type *type);

/* Frees memory uarc returned to the caller (strings from the text functions). NULL is ignored. */
UARC_API void uarc_free(void *ptr);

/* Builds a string value owning a copy of the NUL-terminated `text` (NULL: null string). The
 * string is null when out of memory. */
UARC_API uarc_string uarc_string_from(const char *text);

/* Compares a string value with a NUL-terminated string. */
UARC_API bool uarc_string_equal_cstr(const uarc_string *s, const char *text);

/* Convenience constructors for NodeIds (the string ones own a copy of `text`). */
UARC_API uarc_nodeid uarc_nodeid_numeric(uint16_t namespace_index, uint32_t identifier);
UARC_API uarc_nodeid uarc_nodeid_string(uint16_t namespace_index, const char *text);

/* Sets `variant` (which must be empty or cleared) to own a copy of one value of `type`. */
UARC_API uarc_status uarc_variant_set_scalar(uarc_variant *variant, const void *value,
                                             const uarc_type *type);
/* Sets `variant` to own a copy of `count` values of `type` at `array` (a one-dimensional
 * array; NULL with count 0 gives the null array). */
UARC_API uarc_status uarc_variant_set_array(uarc_variant *variant, const void *array, size_t count,
                                            const uarc_type *type);

/* ---- Binary codec ------------------------------------------------------------------------ */

/* Decoding limits. Zero-filled is valid; every 0 means the documented default. */
typedef struct uarc_decode_config {
    size_t max_string_length; /* bytes in one String/ByteString/XmlElement. Default 16 MiB */
    size_t max_array_length;  /* elements in one array. Default 1,000,000 */
    uint32_t max_depth;       /* nesting of structures, Variants, DataValues, ExtensionObjects and
                                 DiagnosticInfos. Default 64 */
    size_t max_alloc;         /* bytes allocated for the whole decoded value. Default 256 MiB */
    uarc_arena *arena;        /* NULL: the value is heap-owned (free with uarc_clear); else all
                                 its memory comes from the arena */
    char *detail;             /* optional: receives a NUL-terminated description of a failure,
                                 naming the field ("ReadResponse.results[3].value: ...") */
    size_t detail_size;       /* size of `detail` in bytes */
} uarc_decode_config;

#define UARC_DECODE_DEFAULT_MAX_STRING_LENGTH ((size_t)16 * 1024 * 1024)
#define UARC_DECODE_DEFAULT_MAX_ARRAY_LENGTH  ((size_t)1000000)
#define UARC_DECODE_DEFAULT_MAX_DEPTH         64u
#define UARC_DECODE_DEFAULT_MAX_ALLOC         ((size_t)256 * 1024 * 1024)

/*
 * Decodes one value of `type` from data[*offset .. length) into `dst` (overwritten, not cleared
 * first) and advances *offset past it. `config` may be NULL (defaults, heap).
 * Returns Good; BadDecodingError for malformed or truncated input; BadEncodingLimitsExceeded when a
 * limit is exceeded; BadOutOfMemory. On failure `dst` is zero-filled, nothing leaks (arena
 * allocations made by this call are released), and *offset is unchanged.
 */
UARC_API uarc_status uarc_decode(const void *data, size_t length, size_t *offset, void *dst,
                                 const uarc_type *type, const uarc_decode_config *config);

/*
 * Encodes `src` into buf[*offset .. capacity) and advances *offset. Returns Good;
 * BadEncodingLimitsExceeded when the buffer is too small or nesting exceeds 100 levels;
 * BadEncodingError for a value that has no encoding (a string longer than INT32_MAX, an empty
 * Variant type with data, array dimensions that do not match). On failure *offset is unchanged
 * and the bytes after it are unspecified.
 */
UARC_API uarc_status uarc_encode(const void *src, const uarc_type *type, void *buf, size_t capacity,
                                 size_t *offset);

/* Encodes `src` into a new buffer *out of *length bytes (free with uarc_free). */
UARC_API uarc_status uarc_encode_alloc(const void *src, const uarc_type *type, uint8_t **out,
                                       size_t *length);

/* ---- Text forms -------------------------------------------------------------------------- */

/*
 * NodeId text (Part 6 §5.1.12): "i=2258", "ns=1;s=Temp", "ns=2;g=09087e75-8e5e-499b-954f-
 * f2a9603db28a", "ns=3;b=<base64>". Parsing reads `length` bytes of `text` (SIZE_MAX: up to the
 * NUL); on success *out owns its identifier. Returns BadNodeIdInvalid for bad text.
 */
UARC_API uarc_status uarc_nodeid_parse(const char *text, size_t length, uarc_nodeid *out);
/* ExpandedNodeId text: an optional "svr=<index>;" then "nsu=<uri>;" or "ns=<index>;", then the
 * identifier. */
UARC_API uarc_status uarc_expanded_nodeid_parse(const char *text, size_t length,
                                                uarc_expanded_nodeid *out);

/* Writes the text form like snprintf: at most `size` bytes including the NUL; returns the length
 * the full text has (so a result >= size means it was truncated). `buf` may be NULL if size 0. */
UARC_API size_t uarc_nodeid_print(const uarc_nodeid *id, char *buf, size_t size);
UARC_API size_t uarc_expanded_nodeid_print(const uarc_expanded_nodeid *id, char *buf, size_t size);

/* Guid text "09087e75-8e5e-499b-954f-f2a9603db28a" (parsing accepts either case and optional
 * braces). `buf` must hold UARC_GUID_TEXT_SIZE bytes; it receives lowercase hex and a NUL. */
#define UARC_GUID_TEXT_SIZE 37
UARC_API bool uarc_guid_parse(const char *text, size_t length, uarc_guid *out);
UARC_API void uarc_guid_print(const uarc_guid *guid, char buf[UARC_GUID_TEXT_SIZE]);

/* DateTime as ISO 8601 UTC, "2024-05-01T12:30:00.1234567Z" (fraction only as long as needed).
 * `buf` must hold UARC_DATETIME_TEXT_SIZE bytes. Years outside 0001..9999 are clamped. */
#define UARC_DATETIME_TEXT_SIZE 32
UARC_API void uarc_datetime_print(uarc_datetime time, char buf[UARC_DATETIME_TEXT_SIZE]);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"; false for anything else. */
UARC_API bool uarc_datetime_parse(const char *text, size_t length, uarc_datetime *out);
/* The current time. */
UARC_API uarc_datetime uarc_datetime_now(void);

/*
 * JSON (Part 6 §5.4, the non-reversible form): a Variant as its bare value; numbers; Int64 and
 * UInt64 as strings; ByteString as base64; DateTime as ISO 8601; NodeId and ExpandedNodeId as
 * their text form; QualifiedName as "ns:name"; LocalizedText as {"Locale","Text"}; StatusCode as
 * {"Code","Symbol"}; arrays as JSON arrays (nested for several dimensions); structures as objects
 * with the schema's field names. Returns a NUL-terminated string (free with uarc_free) and its
 * length in *length (may be NULL); NULL when out of memory.
 */
UARC_API char *uarc_json_encode(const void *value, const uarc_type *type, size_t *length);
UARC_API char *uarc_variant_to_json(const uarc_variant *variant, size_t *length);
/*
 * `length` bytes of `data` as one JSON string, quotes included, written as every string of
 * uarc_json_encode() is: '"' and '\' escaped, \n \r \t as such, other control bytes and DEL as
 * \u00XX, other valid UTF-8 as is, each byte that is not part of valid UTF-8 as \ufffd. Returns
 * a NUL-terminated string (free with uarc_free) and its length in *json_length (may be NULL);
 * NULL when out of memory.
 */
UARC_API char *uarc_json_string(const void *data, size_t length, size_t *json_length);

#ifdef __cplusplus
}
#endif

#endif
