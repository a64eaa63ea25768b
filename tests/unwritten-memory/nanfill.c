// LD_PRELOAD shim for finding CPU kernels that read memory they never wrote (docs/performance.md).
// libtorch's CPU allocator takes its blocks from posix_memalign; this fills every such block with 0xff bytes, a float
// NaN, before libtorch sees it. A kernel that reads any part of a block before writing it then turns out NaN on
// every run, where with reused memory it would go wrong only when the block last held NaN or garbage.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static int (*real_posix_memalign)(void **, size_t, size_t);

int posix_memalign(void **block, size_t alignment, size_t size)
{
    if (!real_posix_memalign) real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    int result = real_posix_memalign(block, alignment, size);
    if (result == 0 && *block) memset(*block, 0xff, size);
    return result;
}
