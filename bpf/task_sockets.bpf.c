/* SPDX-License-Identifier: MIT OR Apache-2.0 OR GPL-2.0-only */
/*
 * The owners of sockets, from the kernel in one pass: an iterator over every (process,
 * descriptor, file) that writes one record per socket descriptor, for
 * src/collect/bpf/mod.rs to read. It writes what the /proc walk reads from
 * /proc/PID/fd/N links of the form `socket:[INODE]`, and nothing else:
 *
 *   struct record { u32 pid; u32 fd; u64 inode; }   16 bytes, host byte order
 *
 * `pid` is the process's id in the pid namespace of the reader (as /proc shows it there).
 *
 * Only the thread group's leader is looked at, as /proc/PID/fd is the leader's table: the
 * kernel already skips the threads that share it, and a thread with a table of its own
 * (unshare(CLONE_FILES)) is not among the descriptors /proc/PID/fd lists either.
 *
 * Built by scripts/bpf (clang for the bpf target); the object is committed beside this
 * file, with the hashes scripts/bpf checks.
 */
#include "kernel_types.h"

#define SEC(name) __attribute__((section(name), used))

/* The magic number of sockfs: a file whose inode lives there is a socket. */
#define SOCKFS_MAGIC 0x534F434BUL

/* Helpers, by number (include/uapi/linux/bpf.h). */
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)127;
static struct task_struct *(*bpf_get_current_task_btf)(void) = (void *)158;

struct record {
	__u32 pid;
	__u32 fd;
	__u64 inode;
};

/*
 * The id of `task`, a group leader whose id in the initial namespace is `tgid`, in the
 * reader's pid namespace.
 */
static __attribute__((always_inline)) __u32 pid_here(struct task_struct *task, int tgid)
{
	unsigned int level = bpf_get_current_task_btf()->thread_pid->level;
	struct pid *pid = 0;
	int nr = tgid;

	if (level == 0)
		return tgid;
	/*
	 * numbers[level] is the reader's namespace's entry: the iterator visits only the
	 * tasks visible there, whose struct pid reaches at least that deep.
	 */
	bpf_probe_read_kernel(&pid, sizeof(pid), &task->thread_pid);
	unsigned long at = (unsigned long)pid +
			   __builtin_preserve_field_info(pid->numbers, 0 /* byte offset */) +
			   level * sizeof(struct upid) +
			   __builtin_preserve_field_info(((struct upid *)0)->nr, 0);
	bpf_probe_read_kernel(&nr, sizeof(nr), (const void *)at);
	return nr;
}

SEC("iter/task_file")
int task_sockets(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;

	if (!task || !file)
		return 0;
	int tgid = task->tgid;
	if (task->pid != tgid)
		return 0;
	struct inode *inode = file->f_inode;
	if (!inode || inode->i_sb->s_magic != SOCKFS_MAGIC)
		return 0;
	struct record record = {
		.pid = pid_here(task, tgid),
		.fd = ctx->fd,
		.inode = inode->i_ino,
	};
	bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
	return 0;
}

/* bpf_seq_write is for GPL-compatible programs; this file is offered under the GPL too. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
