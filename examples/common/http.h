/*
 * http.h - HTTP/1.x request framing for the example servers.
 *
 * http_frame() looks at the bytes a connection has received and says
 * whether they start with a complete request head, need more bytes, or can
 * never become a valid request. It keeps no state and never allocates, so a
 * server calls it from on_data on whatever is buffered, and a fuzzer can
 * call it on anything.
 */
#ifndef EXAMPLES_HTTP_H
#define EXAMPLES_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest request head accepted: request line, header fields and the blank
 * line that ends them. A longer head is answered with 431. */
#define HTTP_HEAD_MAX 8192

typedef enum http_frame_result {
    HTTP_FRAME_NEED_MORE = 0, /* no complete head yet, nothing wrong so far */
    HTTP_FRAME_REQUEST,       /* a complete head: see the http_request */
    HTTP_FRAME_BAD,           /* malformed: answer 400 and close */
    HTTP_FRAME_TOO_LARGE,     /* head over HTTP_HEAD_MAX: answer 431, close */
    HTTP_FRAME_UNSUPPORTED    /* a Transfer-Encoding: answer 501, close */
} http_frame_result;

typedef enum http_method {
    HTTP_GET = 1,
    HTTP_HEAD,
    HTTP_OTHER               /* any other valid method token */
} http_method;

/* What a server needs to answer one request. */
typedef struct http_request {
    size_t head_len;         /* bytes of the head, through its blank line */
    uint64_t body_len;       /* Content-Length (0 without one): these bytes
                                follow the head and belong to this request */
    http_method method;
    int minor_version;       /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    bool keep_alive;         /* the connection stays open after the answer */
} http_request;

/* Frame the request at the start of data (len bytes). On
 * HTTP_FRAME_REQUEST *req describes it; otherwise *req is unspecified.
 * Lines end with CRLF; empty lines before a request line are skipped (and
 * counted in head_len). HTTP/1.1 requires exactly one Host field. */
http_frame_result http_frame(const char *data, size_t len,
                             http_request *req);

/* The status code a server answers a failed frame result with (400, 431,
 * 501), or 0 for HTTP_FRAME_NEED_MORE and HTTP_FRAME_REQUEST. */
int http_frame_status(http_frame_result r);

#endif /* EXAMPLES_HTTP_H */
