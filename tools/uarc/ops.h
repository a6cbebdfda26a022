/* What the client subcommands do once connected, shared by `uarc read/browse/...` and
 * `uarc listen --read/--browse`: run one operation and print its event. */
#ifndef UARC_TOOL_OPS_H
#define UARC_TOOL_OPS_H

#include "uarc/client.h"
#include "output.h"

typedef struct ops_context {
    uarc_client *client;
    bool json;
    const char *server_uri; /* added to every event when not NULL */
    const char *peer;       /* added to error events when not NULL or "" */
    const char *end;        /* how the connection ended, likewise ("connect timeout") */
    const char *cause;      /* that end in one word, likewise (uarc_client_end_kind()) */
} ops_context;

/* Each returns Good or the failing status (already reported as an event). A read, write or call
 * the server answered gets one `read`/`write`/`call` event carrying the node's or method's
 * status, Bad ones included, and no `error` event; `error` is for a step that could not be carried
 * out (arguments, the service call as a whole). A Bad node status is a failure, others are not. */
/* Reads the Value of every node in one Read request; one event per node, in order. */
uarc_status ops_read(const ops_context *ctx, char *const *node_texts, size_t count);
uarc_status ops_browse(const ops_context *ctx, const char *node_text, bool recursive);
uarc_status ops_endpoints(const ops_context *ctx);
uarc_status ops_write(const ops_context *ctx, const char *node_text, const char *type_name,
                      const char *value_text);
/* `inputs` are "TYPE:VALUE" texts. */
uarc_status ops_call(const ops_context *ctx, const char *object_text, const char *method_text,
                     char **inputs, size_t input_count);

/* Parses a NodeId; on failure prints an error event (step "arguments") and returns false. */
bool ops_parse_node(const ops_context *ctx, const char *text, uarc_nodeid *id);

/* Print the event of one finished operation (for callers that ran it themselves). The read
 * returns the value's status when it is Bad, else Good. */
uarc_status ops_print_read(const ops_context *ctx, const uarc_nodeid *id,
                           const uarc_data_value *value);
void ops_print_browse(const ops_context *ctx, const uarc_nodeid *id,
                      const uarc_ReferenceDescription *refs, size_t count);

/* Adds a NodeId field, and the status, type, value and timestamps of a DataValue. */
void ops_add_nodeid(out_line *line, const char *key, const uarc_nodeid *id);
void ops_add_data_value(out_line *line, const uarc_data_value *value);

/* Reports a failure of the client (the step and status come from uarc_client_error()). */
void ops_report_error(const ops_context *ctx, uarc_status status);
/* The same for a detail "<step>: <StatusName>: <reason>" from elsewhere (the hub's). */
void ops_report_detail(const ops_context *ctx, uarc_status status, const char *detail);

/* Parses a scalar of a built-in type from text ("Double", "3.5") into *out (heap-owned), or a
 * one-dimensional array when the type ends with "[]": the text is then a JSON array whose
 * elements (strings, numbers, true, false) are the scalar texts ("Int32[]", "[1,-2]").
 * Returns false with a message in `detail`. */
bool ops_parse_value(const char *type_name, const char *text, uarc_variant *out, char *detail,
                     size_t detail_size);

#endif
