/*
 * http.c - HTTP/1.x request framing (RFC 9112), strict where leniency
 * would let two parsers disagree about where a request ends.
 */
#include "http.h"

#include <string.h>

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Case-insensitive comparison of s (n bytes) with a lower-case literal. */
static bool token_is(const char *s, size_t n, const char *lower)
{
    size_t i;

    if (strlen(lower) != n)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)lower[i])
            return false;
    }
    return true;
}

/* What the header fields said, gathered while walking the head. */
struct fields {
    unsigned hosts;
    bool has_length;
    bool has_transfer_encoding;
    bool conn_close;
    bool conn_keep_alive;
    uint64_t length;
};

/* method SP request-target SP HTTP-version, nothing else. */
static bool parse_request_line(const char *s, size_t n, http_request *req)
{
    size_t i = 0, start;

    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= n || s[i] != ' ')
        return false;
    if (i == 3 && memcmp(s, "GET", 3) == 0)
        req->method = HTTP_GET;
    else if (i == 4 && memcmp(s, "HEAD", 4) == 0)
        req->method = HTTP_HEAD;
    else
        req->method = HTTP_OTHER;   /* methods are case-sensitive */

    start = ++i;
    while (i < n && s[i] > ' ' && s[i] < 0x7f)
        i++;
    if (i == start || i >= n || s[i] != ' ')
        return false;
    i++;

    if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 ||
        s[i + 7] < '0' || s[i + 7] > '9')
        return false;
    req->minor_version = s[i + 7] - '0';
    return true;
}

static bool parse_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t value = 0;
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        if (value > (UINT64_MAX - 9) / 10)
            return false;
        value = value * 10 + (uint64_t)(v[i] - '0');
    }
    *out = value;
    return true;
}

/* Connection: a comma-separated list of options. */
static void parse_connection(const char *v, size_t n, struct fields *f)
{
    size_t i = 0;

    while (i < n) {
        size_t start, end;

        while (i < n && (is_ows((unsigned char)v[i]) || v[i] == ','))
            i++;
        start = i;
        while (i < n && v[i] != ',')
            i++;
        end = i;
        while (end > start && is_ows((unsigned char)v[end - 1]))
            end--;
        if (token_is(v + start, end - start, "close"))
            f->conn_close = true;
        else if (token_is(v + start, end - start, "keep-alive"))
            f->conn_keep_alive = true;
    }
}

/* field-name ":" OWS field-value OWS. Returns false if malformed. */
static bool parse_field(const char *s, size_t n, struct fields *f)
{
    size_t i = 0, name_len, vstart, vend;

    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    /* No whitespace between name and colon (RFC 9112 5.1), and a line
     * starting with whitespace would be an obsolete line folding. */
    if (i == 0 || i >= n || s[i] != ':')
        return false;
    name_len = i++;
    while (i < n && is_ows((unsigned char)s[i]))
        i++;
    vstart = i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < ' ' && c != '\t')
            return false;
        if (c == 0x7f)
            return false;
    }
    vend = n;
    while (vend > vstart && is_ows((unsigned char)s[vend - 1]))
        vend--;

    if (token_is(s, name_len, "host")) {
        f->hosts++;
    } else if (token_is(s, name_len, "content-length")) {
        uint64_t value;
        if (!parse_length(s + vstart, vend - vstart, &value))
            return false;
        if (f->has_length && value != f->length)
            return false;
        f->has_length = true;
        f->length = value;
    } else if (token_is(s, name_len, "transfer-encoding")) {
        f->has_transfer_encoding = true;
    } else if (token_is(s, name_len, "connection")) {
        parse_connection(s + vstart, vend - vstart, f);
    }
    return true;
}

/* A request line still arriving can already be wrong: its method must be
 * a token. Catches binary junk (a TLS hello, say) without waiting for 8 KiB. */
static bool partial_line_ok(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n && s[i] != ' '; i++)
        if (s[i] != '\r' && !is_tchar((unsigned char)s[i]))
            return false;
    return !(n > 0 && s[0] == ' ');
}

http_frame_result http_frame(const char *data, size_t len, http_request *req)
{
    size_t limit = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
    size_t pos = 0;
    bool have_request_line = false;
    struct fields f;

    memset(&f, 0, sizeof f);
    memset(req, 0, sizeof *req);
    for (;;) {
        const char *nl = memchr(data + pos, '\n', limit - pos);
        size_t end, line_len;
        const char *line = data + pos;

        if (nl == NULL) {
            /* No line end within the first HTTP_HEAD_MAX bytes: once that
             * many have arrived the head can only be too large. */
            if (len >= HTTP_HEAD_MAX)
                return HTTP_FRAME_TOO_LARGE;
            if (!have_request_line && !partial_line_ok(line, limit - pos))
                return HTTP_FRAME_BAD;
            return HTTP_FRAME_NEED_MORE;
        }
        end = (size_t)(nl - data);
        if (end == pos || data[end - 1] != '\r')
            return HTTP_FRAME_BAD;          /* a bare LF */
        line_len = end - 1 - pos;
        pos = end + 1;
        if (memchr(line, '\r', line_len) != NULL)
            return HTTP_FRAME_BAD;          /* a bare CR */

        if (line_len == 0) {
            if (!have_request_line)
                continue;                   /* empty line before a request */
            break;
        }
        if (!have_request_line) {
            if (!parse_request_line(line, line_len, req))
                return HTTP_FRAME_BAD;
            have_request_line = true;
        } else if (!parse_field(line, line_len, &f)) {
            return HTTP_FRAME_BAD;
        }
    }

    if (f.has_transfer_encoding)
        return HTTP_FRAME_UNSUPPORTED;
    if (req->minor_version >= 1 && f.hosts != 1)
        return HTTP_FRAME_BAD;
    if (f.hosts > 1)
        return HTTP_FRAME_BAD;
    req->head_len = pos;
    req->body_len = f.length;
    if (req->minor_version >= 1)
        req->keep_alive = !f.conn_close;
    else
        req->keep_alive = f.conn_keep_alive && !f.conn_close;
    return HTTP_FRAME_REQUEST;
}

int http_frame_status(http_frame_result r)
{
    switch (r) {
    case HTTP_FRAME_BAD:
        return 400;
    case HTTP_FRAME_TOO_LARGE:
        return 431;
    case HTTP_FRAME_UNSUPPORTED:
        return 501;
    case HTTP_FRAME_NEED_MORE:
    case HTTP_FRAME_REQUEST:
        break;
    }
    return 0;
}
