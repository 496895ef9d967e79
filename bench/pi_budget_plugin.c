/*
 * Instruction counts per task of the box's loop, for bench/pi_budget.py.
 *
 * A TCG plugin for qemu-user (API version 1, QEMU 6.0-8.x as Debian ships it in
 * qemu-user). Every executed translation block adds its instruction count to the thread
 * that ran it. The guest marks where its tasks begin and end with close() on a
 * negative descriptor (a harmless EBADF): close(-(1000 + k)) enters task k,
 * close(-(2000 + k)) leaves it. Tasks nest; instructions go to the innermost one
 * (so a simulator marked inside the sensor task is not charged to the sensor).
 * At exit one line per task is written to the file named by the "out" argument:
 *   k runs total_instructions max_instructions_of_one_run index_of_that_run
 * plus "main" (the main thread outside any task) and "threads" (all other threads).
 *
 * Only the few declarations used are written out here, as the plugin API defines them
 * (include/qemu/qemu-plugin.h): Debian ships the plugin-enabled qemu-user but not the
 * header.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
typedef void (*vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*syscall_cb)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                           uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                           uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, vcpu_udata_cb cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, syscall_cb cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MAX_TASKS 64
#define MAX_DEPTH 16
#define SYS_CLOSE_AARCH64 57
#define MAIN_VCPU 0

static uint64_t main_insns, other_insns, last;
static uint64_t runs[MAX_TASKS], total[MAX_TASKS], worst[MAX_TASKS], current[MAX_TASKS];
static uint64_t worst_at[MAX_TASKS];
static int stack[MAX_DEPTH], depth;
static uint64_t outside;
static char out_path[4096];

static void on_exec(unsigned int vcpu_index, void *userdata)
{
    if (vcpu_index == MAIN_VCPU) {
        main_insns += (uintptr_t)userdata;
    } else {
        other_insns += (uintptr_t)userdata;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

/* Charge what ran since the last marker to the innermost task (or to "outside"). */
static void settle(void)
{
    uint64_t delta = main_insns - last;
    last = main_insns;
    if (depth > 0) {
        current[stack[depth - 1]] += delta;
    } else {
        outside += delta;
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8)
{
    int64_t fd = (int64_t)a1;
    if (vcpu_index != MAIN_VCPU || num != SYS_CLOSE_AARCH64 || fd > -1000 || fd <= -3000) {
        return;
    }
    settle();
    int code = (int)(-fd);
    int k = code % 1000;
    if (k >= MAX_TASKS) {
        return;
    }
    if (code < 2000) {
        if (depth < MAX_DEPTH) {
            stack[depth++] = k;
            current[k] = 0;
        }
    } else if (depth > 0 && stack[depth - 1] == k) {
        depth--;
        runs[k]++;
        total[k] += current[k];
        if (current[k] > worst[k]) {
            worst[k] = current[k];
            worst_at[k] = runs[k] - 1;
        }
    }
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
    settle();
    FILE *f = fopen(out_path, "w");
    if (f == NULL) {
        return;
    }
    for (int k = 0; k < MAX_TASKS; k++) {
        if (runs[k]) {
            fprintf(f, "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", k, runs[k],
                    total[k], worst[k], worst_at[k]);
        }
    }
    fprintf(f, "main 1 %" PRIu64 " %" PRIu64 " 0\n", outside, outside);
    fprintf(f, "threads 1 %" PRIu64 " %" PRIu64 " 0\n", other_insns, other_insns);
    fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof(out_path), "%s", argv[i] + 4);
        }
    }
    if (out_path[0] == '\0') {
        fprintf(stderr, "pi_budget_plugin: give out=FILE\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
