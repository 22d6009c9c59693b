// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Loads a linked BPF object with libbpf, sets global variables before the
 * load, attaches every program, triggers them with a getpgid() syscall and
 * prints global variables afterwards: what the BPF selftests' prog_tests
 * do for the multi-object selftests (test_static_linked, linked_funcs,
 * linked_vars, linked_maps), without their skeletons.
 *
 *   corpus_run OBJ [--autoload-all] [--set SEC:VAR=VALUE|tid]... [--get SEC:VAR]...
 *   corpus_run OBJ --each-prog
 *   corpus_run OBJ --loadall
 *   corpus_run --link OUT IN...
 *
 * --each-prog loads every program alone (the others' autoload off, as the
 * selftests' test_loader loads each test program) and prints, per program,
 * "NAME VERIFIED_INSNS" or "NAME failed ERRNO".
 * --loadall loads the object as `bpftool prog loadall` does (every program
 * libbpf autoloads, in one load) and prints, per loaded program,
 * "NAME TYPE VERIFIED_INSNS" (TYPE as libbpf and bpftool name it); exit 1
 * with libbpf's messages when the load fails.
 * --link links the inputs with libbpf's linker into OUT, as `bpftool gen
 * object` does.
 *
 * VALUE "tid" is the caller's thread id, "getpgid" the syscall's number.
 * Prints "SYS_getpgid=N", then one "VAR=VALUE" line per --get, in order.
 * Exit 1 on any failure, with libbpf's messages on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static int print_warnings(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* The offset and size of VAR in DATASEC SEC, or -1. */
static int find_var(const struct btf *btf, const char *sec, const char *var, __u32 *off, __u32 *size)
{
	int id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
	if (id < 0)
		return -1;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *v = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, v++) {
		const struct btf_type *vt = btf__type_by_id(btf, v->type);
		if (strcmp(btf__name_by_offset(btf, vt->name_off), var) == 0) {
			*off = v->offset;
			*size = v->size;
			return 0;
		}
	}
	return -1;
}

/* "SEC:VAR" split in place. */
static int split(char *arg, char **sec, char **var)
{
	char *colon = strrchr(arg, ':');
	if (!colon)
		return -1;
	*colon = 0;
	*sec = arg;
	*var = colon + 1;
	return 0;
}

/* One object load per program, with only that program loaded. */
static int each_prog(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	int n = 0;
	struct bpf_program *p;
	bpf_object__for_each_program(p, obj)
		n++;
	bpf_object__close(obj);
	for (int i = 0; i < n; i++) {
		obj = bpf_object__open_file(path, NULL);
		if (!obj) {
			fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
			return 1;
		}
		int j = 0;
		struct bpf_program *mine = NULL;
		bpf_object__for_each_program(p, obj) {
			bpf_program__set_autoload(p, j == i);
			if (j++ == i)
				mine = p;
		}
		int err = bpf_object__load(obj);
		if (err) {
			printf("%s failed %d\n", bpf_program__name(mine), -err);
		} else {
			struct bpf_prog_info info = {};
			__u32 len = sizeof(info);
			if (bpf_obj_get_info_by_fd(bpf_program__fd(mine), &info, &len)) {
				fprintf(stderr, "cannot read program info: %s\n", strerror(errno));
				return 1;
			}
			printf("%s %u\n", bpf_program__name(mine), info.verified_insns);
		}
		bpf_object__close(obj);
	}
	return 0;
}

/* The whole object loaded at once, as `bpftool prog loadall` loads it. */
static int loadall(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	int err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "failed to load object file: %s\n", strerror(-err));
		bpf_object__close(obj);
		return 1;
	}
	struct bpf_program *p;
	bpf_object__for_each_program(p, obj) {
		if (bpf_program__fd(p) < 0)
			continue;
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len)) {
			fprintf(stderr, "cannot read program info: %s\n", strerror(errno));
			return 1;
		}
		const char *type = libbpf_bpf_prog_type_str(info.type);
		printf("%s %s %u\n", bpf_program__name(p), type ? type : "unknown", info.verified_insns);
	}
	bpf_object__close(obj);
	return 0;
}

/* libbpf's static linker, as `bpftool gen object OUT IN...` runs it. */
static int link_objects(const char *out, char **in, int n)
{
	struct bpf_linker *linker = bpf_linker__new(out, NULL);
	if (!linker) {
		fprintf(stderr, "cannot create %s: %s\n", out, strerror(errno));
		return 1;
	}
	int err = 0;
	for (int i = 0; i < n && !err; i++)
		err = bpf_linker__add_file(linker, in[i], NULL);
	if (!err)
		err = bpf_linker__finalize(linker);
	bpf_linker__free(linker);
	if (err) {
		fprintf(stderr, "failed to link: %s\n", strerror(-err));
		unlink(out);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: corpus_run OBJ [--autoload-all] [--set SEC:VAR=VALUE]... [--get SEC:VAR]...\n"
				"       corpus_run OBJ --each-prog | --loadall\n"
				"       corpus_run --link OUT IN...\n");
		return 2;
	}
	libbpf_set_print(print_warnings);
	if (strcmp(argv[1], "--link") == 0 && argc >= 4)
		return link_objects(argv[2], argv + 3, argc - 3);
	if (argc == 3 && strcmp(argv[2], "--loadall") == 0)
		return loadall(argv[1]);
	if (argc == 3 && strcmp(argv[2], "--each-prog") == 0) {
		/* Only the verdicts matter here, not libbpf's warnings. */
		libbpf_set_print(NULL);
		return each_prog(argv[1]);
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	const struct btf *btf = bpf_object__btf(obj);
	if (!btf) {
		fprintf(stderr, "%s has no BTF\n", argv[1]);
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--autoload-all") == 0) {
			struct bpf_program *p;
			bpf_object__for_each_program(p, obj)
				bpf_program__set_autoload(p, true);
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
			char *sec, *var, *eq = strchr(argv[++i], '=');
			if (!eq || (*eq = 0, split(argv[i], &sec, &var))) {
				fprintf(stderr, "bad --set %s\n", argv[i]);
				return 2;
			}
			long long value = strcmp(eq + 1, "tid") == 0	   ? syscall(SYS_gettid)
					  : strcmp(eq + 1, "getpgid") == 0 ? SYS_getpgid
									   : atoll(eq + 1);
			struct bpf_map *map = bpf_object__find_map_by_name(obj, sec);
			__u32 off, size;
			size_t map_size;
			/* libbpf 1.1 declares it const; it is the writable initial image. */
			char *data = map ? (char *)bpf_map__initial_value(map, &map_size) : NULL;
			if (!data || find_var(btf, sec, var, &off, &size) || off + size > map_size || size > 8) {
				fprintf(stderr, "no variable %s in %s\n", var, sec);
				return 1;
			}
			/* Little-endian: the low bytes of the value. */
			memcpy(data + off, &value, size);
		} else if (strcmp(argv[i], "--get") == 0 && i + 1 < argc) {
			i++;
		} else {
			fprintf(stderr, "bad argument %s\n", argv[i]);
			return 2;
		}
	}
	int err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "load failed: %s\n", strerror(-err));
		return 1;
	}
	struct bpf_program *p;
	bpf_object__for_each_program(p, obj) {
		if (!bpf_program__autoload(p))
			continue;
		if (!bpf_program__attach(p)) {
			fprintf(stderr, "cannot attach %s: %s\n", bpf_program__name(p), strerror(errno));
			return 1;
		}
	}
	syscall(SYS_getpgid);
	usleep(1);
	printf("SYS_getpgid=%d\n", SYS_getpgid);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--get") != 0)
			continue;
		char *sec, *var;
		if (split(argv[++i], &sec, &var)) {
			fprintf(stderr, "bad --get %s\n", argv[i]);
			return 2;
		}
		struct bpf_map *map = bpf_object__find_map_by_name(obj, sec);
		__u32 off, size, key = 0;
		if (!map || find_var(btf, sec, var, &off, &size) || size > 8 ||
		    off + size > bpf_map__value_size(map)) {
			fprintf(stderr, "no variable %s in %s\n", var, sec);
			return 1;
		}
		char *buf = calloc(1, bpf_map__value_size(map));
		if (!buf || bpf_map_lookup_elem(bpf_map__fd(map), &key, buf)) {
			fprintf(stderr, "cannot read %s: %s\n", sec, strerror(errno));
			return 1;
		}
		long long value = 0;
		memcpy(&value, buf + off, size);
		/* Sign-extend what is narrower than 8 bytes. */
		if (size < 8 && (value >> (8 * size - 1)) & 1)
			value |= -1LL << (8 * size);
		printf("%s=%lld\n", var, value);
		free(buf);
	}
	bpf_object__close(obj);
	return 0;
}
