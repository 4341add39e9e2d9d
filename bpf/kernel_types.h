/* SPDX-License-Identifier: MIT OR Apache-2.0 OR GPL-2.0-only */
/*
 * The few kernel types task_sockets.bpf.c reads, written by hand instead of a vmlinux.h
 * generated from one kernel: the compiled object then depends on this file and the
 * compiler alone, so the committed object can be rebuilt byte for byte anywhere, and it
 * runs on any kernel with BTF (CO-RE: the loader moves each field read to where the
 * running kernel's BTF says the field is; only the names and the types of the fields
 * below must match).
 */
#ifndef SOCKSCOPE_KERNEL_TYPES_H
#define SOCKSCOPE_KERNEL_TYPES_H

typedef unsigned int __u32;
typedef unsigned long long __u64;

struct seq_file;
struct pid_namespace;

/*
 * The iterator's context: its layout is the iterator's interface (the arguments of
 * bpf_iter_task_file, in order), checked by the verifier; not relocated.
 */
struct bpf_iter_meta {
	union {
		struct seq_file *seq;
	};
	__u64 session_id;
	__u64 seq_num;
};

struct bpf_iter__task_file {
	union {
		struct bpf_iter_meta *meta;
	};
	union {
		struct task_struct *task;
	};
	__u32 fd;
	union {
		struct file *file;
	};
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[1];
};

struct task_struct {
	int pid;
	int tgid;
	struct pid *thread_pid;
};

struct super_block {
	unsigned long s_magic;
};

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
};

struct file {
	struct inode *f_inode;
};

#pragma clang attribute pop

#endif
