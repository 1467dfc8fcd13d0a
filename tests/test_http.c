/*
 * test_http.c - the request framing function of the example HTTP server
 * (examples/common/http.c): pipelining, partial input, the 8 KiB head
 * limit (431), malformed requests (400), and a deterministic fuzz pass.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/common/http.h"

#define GET_REQ "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

static http_frame_result frame_str(const char *s, http_request *req)
{
    return http_frame(s, strlen(s), req);
}

/* A head of exactly total bytes: one request line, one Host field and a
 * padding field sized to fit. */
static char *make_head(size_t total)
{
    const char *start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    const char *end = "\r\n\r\n";
    size_t fixed = strlen(start) + strlen(end);
    char *buf;

    assert_true(total > fixed);
    buf = malloc(total + 1);
    assert_non_null(buf);
    memcpy(buf, start, strlen(start));
    memset(buf + strlen(start), 'p', total - fixed);
    memcpy(buf + total - strlen(end), end, strlen(end));
    buf[total] = '\0';
    return buf;
}

static void complete_get_is_framed_with_its_head_length(void **state)
{
    http_request req;

    (void)state;
    assert_int_equal(frame_str(GET_REQ, &req), HTTP_FRAME_REQUEST);
    assert_int_equal(req.head_len, strlen(GET_REQ));
    assert_int_equal(req.method, HTTP_GET);
    assert_int_equal(req.minor_version, 1);
    assert_true(req.keep_alive);
    assert_int_equal(req.body_len, 0);
}

static void every_strict_prefix_needs_more(void **state)
{
    const char *full = "GET /index.html HTTP/1.1\r\nHost: example\r\n"
                       "Accept: */*\r\n\r\n";
    http_request req;
    size_t n;

    (void)state;
    for (n = 0; n < strlen(full); n++)
        assert_int_equal(http_frame(full, n, &req), HTTP_FRAME_NEED_MORE);
    assert_int_equal(http_frame(full, n, &req), HTTP_FRAME_REQUEST);
}

static void pipelined_requests_are_framed_one_at_a_time_in_order(void **state)
{
    const char *pipe = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                       "HEAD /two HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /three HTTP/1.1\r\nHost: a\r\n"
                       "Connection: close\r\n\r\n"
                       "GET /fo";
    size_t len = strlen(pipe), off = 0;
    http_request req;

    (void)state;
    assert_int_equal(http_frame(pipe, len, &req), HTTP_FRAME_REQUEST);
    assert_int_equal(req.method, HTTP_GET);
    assert_int_equal(req.head_len, strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"));
    off += req.head_len;

    assert_int_equal(http_frame(pipe + off, len - off, &req),
                     HTTP_FRAME_REQUEST);
    assert_int_equal(req.method, HTTP_HEAD);
    assert_true(req.keep_alive);
    off += req.head_len;

    assert_int_equal(http_frame(pipe + off, len - off, &req),
                     HTTP_FRAME_REQUEST);
    assert_int_equal(req.method, HTTP_GET);
    assert_false(req.keep_alive);
    off += req.head_len;

    assert_int_equal(http_frame(pipe + off, len - off, &req),
                     HTTP_FRAME_NEED_MORE);
    assert_string_equal(pipe + off, "GET /fo");
}

static void content_length_body_belongs_to_the_request(void **state)
{
    const char *s = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
                    "helloGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    http_request req;

    (void)state;
    assert_int_equal(frame_str(s, &req), HTTP_FRAME_REQUEST);
    assert_int_equal(req.method, HTTP_OTHER);
    assert_int_equal(req.body_len, 5);
    assert_int_equal(frame_str(s + req.head_len + req.body_len, &req),
                     HTTP_FRAME_REQUEST);
    assert_int_equal(req.method, HTTP_GET);
}

static void head_of_exactly_8_kib_is_accepted(void **state)
{
    char *head = make_head(HTTP_HEAD_MAX);
    http_request req;

    (void)state;
    assert_int_equal(frame_str(head, &req), HTTP_FRAME_REQUEST);
    assert_int_equal(req.head_len, HTTP_HEAD_MAX);
    free(head);
}

static void head_one_byte_over_8_kib_is_too_large(void **state)
{
    char *head = make_head(HTTP_HEAD_MAX + 1);
    http_request req;
    http_frame_result r;

    (void)state;
    r = frame_str(head, &req);
    assert_int_equal(r, HTTP_FRAME_TOO_LARGE);
    assert_int_equal(http_frame_status(r), 431);
    /* Decided as soon as 8 KiB have arrived without the head's end. */
    assert_int_equal(http_frame(head, HTTP_HEAD_MAX, &req),
                     HTTP_FRAME_TOO_LARGE);
    assert_int_equal(http_frame(head, HTTP_HEAD_MAX - 1, &req),
                     HTTP_FRAME_NEED_MORE);
    free(head);
}

static void endless_header_line_is_too_large(void **state)
{
    size_t len = 3 * HTTP_HEAD_MAX;
    char *buf = malloc(len);
    http_request req;

    (void)state;
    assert_non_null(buf);
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    memset(buf + 19, 'a', len - 19);
    assert_int_equal(http_frame(buf, len, &req), HTTP_FRAME_TOO_LARGE);
    free(buf);
}

static void malformed_heads_are_bad_requests(void **state)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\nHost: a\r\n\r\n",            /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\n\n",              /* bare LFs */
        "GET / HT\rTP/1.1\r\nHost: a\r\n\r\n",        /* bare CR */
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",         /* double space */
        "GET /\r\nHost: a\r\n\r\n",                   /* no version */
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",          /* not HTTP/1.x */
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",         /* trailing space */
        "GET / http/1.1\r\nHost: a\r\n\r\n",          /* lower-case */
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",         /* leading space */
        "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",          /* not a token */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",         /* space before : */
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty-name\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",      /* control char */
        "GET / HTTP/1.1\r\n\r\n",                     /* 1.1 without Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
        "Content-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n"
        "Content-Length: 99999999999999999999999\r\n\r\n",
    };
    http_request req;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_frame_result r = frame_str(bad[i], &req);
        if (r != HTTP_FRAME_BAD)
            fail_msg("case %zu (%s) gave %d, not HTTP_FRAME_BAD", i, bad[i],
                     (int)r);
        assert_int_equal(http_frame_status(r), 400);
    }
}

static void binary_junk_is_rejected_before_the_head_limit(void **state)
{
    static const char tls_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc";
    http_request req;

    (void)state;
    assert_int_equal(http_frame(tls_hello, sizeof tls_hello - 1, &req),
                     HTTP_FRAME_BAD);
}

static void connection_options_decide_keep_alive(void **state)
{
    http_request req;

    (void)state;
    assert_int_equal(frame_str("GET / HTTP/1.1\r\nHost: a\r\n"
                               "Connection: Close\r\n\r\n", &req),
                     HTTP_FRAME_REQUEST);
    assert_false(req.keep_alive);
    assert_int_equal(frame_str("GET / HTTP/1.1\r\nHost: a\r\n"
                               "Connection: upgrade, close \r\n\r\n", &req),
                     HTTP_FRAME_REQUEST);
    assert_false(req.keep_alive);
    assert_int_equal(frame_str("GET / HTTP/1.0\r\n\r\n", &req),
                     HTTP_FRAME_REQUEST);
    assert_int_equal(req.minor_version, 0);
    assert_false(req.keep_alive);
    assert_int_equal(frame_str("GET / HTTP/1.0\r\nConnection: keep-alive"
                               "\r\n\r\n", &req), HTTP_FRAME_REQUEST);
    assert_true(req.keep_alive);
}

static void transfer_encoding_is_unsupported(void **state)
{
    http_request req;
    http_frame_result r;

    (void)state;
    r = frame_str("POST / HTTP/1.1\r\nHost: a\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n", &req);
    assert_int_equal(r, HTTP_FRAME_UNSUPPORTED);
    assert_int_equal(http_frame_status(r), 501);
}

static void empty_lines_before_a_request_are_skipped(void **state)
{
    const char *s = "\r\n\r\n" GET_REQ;
    http_request req;

    (void)state;
    assert_int_equal(frame_str(s, &req), HTTP_FRAME_REQUEST);
    assert_int_equal(req.head_len, strlen(s));
    assert_int_equal(frame_str("\r\n", &req), HTTP_FRAME_NEED_MORE);
}

/* xorshift: the same sequence on every run. */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void fuzzed_input_never_frames_past_its_end(void **state)
{
    static const char alphabet[] = "GET HTTP/1.0\r\n:Host Content-Length 9a\t\x01";
    char buf[512];
    uint32_t seed = 12345;
    int round;

    (void)state;
    for (round = 0; round < 200000; round++) {
        size_t len = next_rand(&seed) % sizeof buf, i;
        http_request req;
        http_frame_result r;

        if (round % 2 == 0) {
            memcpy(buf, GET_REQ GET_REQ, len < 52 ? len : 52);
            for (i = len < 52 ? len : 52; i < len; i++)
                buf[i] = (char)next_rand(&seed);
            if (len > 0)
                buf[next_rand(&seed) % len] =
                    alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
        } else {
            for (i = 0; i < len; i++)
                buf[i] = alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
        }
        r = http_frame(buf, len, &req);
        assert_true(r >= HTTP_FRAME_NEED_MORE && r <= HTTP_FRAME_UNSUPPORTED);
        if (r == HTTP_FRAME_REQUEST) {
            assert_true(req.head_len > 0);
            assert_true(req.head_len <= len);
            assert_true(req.head_len <= HTTP_HEAD_MAX);
            assert_memory_equal(buf + req.head_len - 4, "\r\n\r\n", 4);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(complete_get_is_framed_with_its_head_length),
        cmocka_unit_test(every_strict_prefix_needs_more),
        cmocka_unit_test(pipelined_requests_are_framed_one_at_a_time_in_order),
        cmocka_unit_test(content_length_body_belongs_to_the_request),
        cmocka_unit_test(head_of_exactly_8_kib_is_accepted),
        cmocka_unit_test(head_one_byte_over_8_kib_is_too_large),
        cmocka_unit_test(endless_header_line_is_too_large),
        cmocka_unit_test(malformed_heads_are_bad_requests),
        cmocka_unit_test(binary_junk_is_rejected_before_the_head_limit),
        cmocka_unit_test(connection_options_decide_keep_alive),
        cmocka_unit_test(transfer_encoding_is_unsupported),
        cmocka_unit_test(empty_lines_before_a_request_are_skipped),
        cmocka_unit_test(fuzzed_input_never_frames_past_its_end),
    };

    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
