/* Reference harness: merges the BTF of every input (ELF objects or raw BTF)
 * with libbpf's btf__add_btf, deduplicates with btf__dedup and writes the
 * raw result. Prints the resulting type count (including void) on stdout.
 * Test-only: the project compares its own dedup against this.
 *
 * Build: gcc -O2 -o libbpf-dedup libbpf-dedup.c -lbpf
 * Usage: libbpf-dedup OUT FILE...
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s OUT FILE...\n", argv[0]);
		return 2;
	}
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	struct btf *dst = btf__new_empty();
	if (!dst) {
		fprintf(stderr, "btf__new_empty: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		struct btf *b = btf__parse(argv[i], NULL);
		if (!b) {
			fprintf(stderr, "%s: cannot parse BTF: %s\n", argv[i], strerror(errno));
			return 1;
		}
		int err = btf__add_btf(dst, b);
		btf__free(b);
		if (err < 0) {
			fprintf(stderr, "%s: btf__add_btf: %s\n", argv[i], strerror(-err));
			return 1;
		}
	}
	int err = btf__dedup(dst, NULL);
	if (err) {
		fprintf(stderr, "btf__dedup: %s\n", strerror(-err));
		return 1;
	}
	__u32 size = 0;
	const void *data = btf__raw_data(dst, &size);
	FILE *f = fopen(argv[1], "wb");
	if (!f || !data || fwrite(data, 1, size, f) != size || fclose(f)) {
		fprintf(stderr, "%s: cannot write: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("%u\n", btf__type_cnt(dst));
	btf__free(dst);
	return 0;
}
