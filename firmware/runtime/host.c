/*
 * rt_main: an app under the host protocol (docs/protocol.md), plus boot counting.
 *
 * Job state machine in the single word rt_job (README.md, "Jobs"):
 *   IDLE --RUN--> START --app.start()--> RUNNING --app.resume()--> DONE --RUN--> START
 * Commands are served only while no job is in flight: a boot first finishes whatever
 * job START or RUNNING says is unfinished, then sends RESULT once, then serves commands.
 */
#include "rt.h"

#include "protocol.h"
#include "rt_internal.h"
#include "uart.h"

#ifndef BOARD_NAME
#error "BOARD_NAME must be defined by the board's build flags"
#endif

#define PROTO_VERSION 2u /* 2: RESULT carries cycles */

enum { MSG_INFO = 0x01, MSG_LOAD = 0x02, MSG_RUN = 0x03, MSG_STATUS = 0x04, MSG_RESULT = 0x05,
       MSG_ERROR = 0x7F, REPLY = 0x80 };
enum { ERR_UNKNOWN = 1, ERR_ARGUMENT = 2, ERR_BUSY = 3, ERR_NO_RESULT = 4 };

NV volatile uint16_t rt_boot_count;
NV_INIT volatile uint16_t rt_job = RT_JOB_FACTORY;
NV volatile uint16_t rt_low_energy;
NV static volatile uint16_t rt_exit_taken;
NV static volatile uint16_t rt_result_sent; /* RESULT of the current job went out whole */

NOINIT static proto_frame_t request;
NOINIT static uint8_t reply[PROTO_MAX_BODY];

void rt_boot(void)
{
    rt_cycles_boot();
    rt_boot_count = (uint16_t)(rt_boot_count + 1);
    NV_BARRIER();
    rt_undo_recover();
}

void rt_fatal(const char *why)
{
    (void)why; /* visible in a debugger as rt_fatal's argument */
    for (;;)
        ;
}

static uint16_t put16(uint16_t at, uint16_t v)
{
    reply[at] = (uint8_t)v;
    reply[at + 1] = (uint8_t)(v >> 8);
    return (uint16_t)(at + 2);
}

static uint16_t put32(uint16_t at, uint32_t v)
{
    at = put16(at, (uint16_t)v);
    return put16(at, (uint16_t)(v >> 16));
}

static uint16_t put_string(uint16_t at, const char *s)
{
    uint16_t n = 0;
    while (s[n] && at + 1 + n < PROTO_MAX_BODY)
        n++;
    reply[at] = (uint8_t)n;
    for (uint16_t i = 0; i < n; i++)
        reply[at + 1 + i] = (uint8_t)s[i];
    return (uint16_t)(at + 1 + n);
}

static void send_error(uint8_t seq, uint8_t code, const char *text)
{
    reply[0] = code;
    proto_send(MSG_ERROR | REPLY, seq, reply, put_string(1, text));
}

static void send_result(const rt_app_t *app, uint8_t seq)
{
    uint16_t n = 0;
    reply[n++] = (uint8_t)rt_exit_taken;
    n = put16(n, rt_boot_count);
    n = put32(n, rt_progress());
    n = put32(n, rt_cycles());
    for (uint16_t i = 0; i < app->output_size && n < PROTO_MAX_BODY; i++)
        reply[n++] = app->output[i];
    proto_send(MSG_RESULT | REPLY, seq, reply, n);
}

static void serve(const rt_app_t *app, const proto_frame_t *f)
{
    uint16_t state = RT_JOB_STATE(rt_job);
    uint16_t n = 0;
    switch (f->type) {
    case MSG_INFO:
        n = put16(n, PROTO_VERSION);
        n = put16(n, app->input_size);
        n = put16(n, app->output_size);
        n = put_string(n, BOARD_NAME);
        n = put_string(n, app->name);
        proto_send(MSG_INFO | REPLY, f->seq, reply, n);
        return;
    case MSG_LOAD: {
        if (f->len < 2)
            return send_error(f->seq, ERR_ARGUMENT, "LOAD needs offset u16 and data");
        uint16_t offset = (uint16_t)(f->body[0] | (f->body[1] << 8));
        uint16_t len = (uint16_t)(f->len - 2);
        if (offset > app->input_size || len > app->input_size - offset)
            return send_error(f->seq, ERR_ARGUMENT, "LOAD beyond the input buffer");
        for (uint16_t i = 0; i < len; i++) /* same bytes again on a retry: idempotent */
            app->input[offset + i] = f->body[2 + i];
        NV_BARRIER();
        n = put16(n, offset);
        n = put16(n, len);
        proto_send(MSG_LOAD | REPLY, f->seq, reply, n);
        return;
    }
    case MSG_RUN: {
        uint16_t job = rt_job;
        int duplicate = (job & RT_JOB_HOST) && (job >> 8) == f->seq && state != RT_JOB_IDLE;
        if (!duplicate) {
            rt_result_sent = 0;
            NV_BARRIER();
            rt_job = (uint16_t)((uint16_t)f->seq << 8 | RT_JOB_HOST | RT_JOB_START); /* accepted */
            NV_BARRIER();
        }
        proto_send(MSG_RUN | REPLY, f->seq, reply, 0);
        return;
    }
    case MSG_STATUS:
        reply[n++] = (uint8_t)(state == RT_JOB_DONE ? 2 : state == RT_JOB_IDLE ? 0 : 1);
        n = put32(n, rt_progress());
        n = put16(n, rt_boot_count);
        n = put16(n, proto_dropped);
        proto_send(MSG_STATUS | REPLY, f->seq, reply, n);
        return;
    case MSG_RESULT:
        if (state != RT_JOB_DONE)
            return send_error(f->seq, ERR_NO_RESULT, "no result: no job has finished");
        send_result(app, f->seq);
        return;
    default:
        send_error(f->seq, ERR_UNKNOWN, "unknown command");
        return;
    }
}

void rt_main(const rt_app_t *app)
{
    rt_boot();
    uart_init();
    for (;;) {
        uint16_t job = rt_job;
        if (RT_JOB_STATE(job) == RT_JOB_START) {
            app->start();
            NV_BARRIER();
            rt_job = (uint16_t)((job & ~3u) | RT_JOB_RUNNING);
            NV_BARRIER();
            continue;
        }
        if (RT_JOB_STATE(job) == RT_JOB_RUNNING) {
            rt_exit_taken = app->resume();
            NV_BARRIER();
            rt_job = (uint16_t)((job & ~3u) | RT_JOB_DONE);
            NV_BARRIER();
            continue;
        }
        if (RT_JOB_STATE(job) == RT_JOB_DONE && !rt_result_sent) {
            send_result(app, (uint8_t)(job >> 8));
            rt_result_sent = 1;
            NV_BARRIER();
        }
        proto_receive(&request);
        serve(app, &request);
    }
}
