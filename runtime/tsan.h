/*
 * ThreadSanitizer annotations. ck's x86_64 atomics are inline assembly that
 * TSan does not see; where a ck structure carries data between threads we
 * hide its internal copies (MM_NO_TSAN) and state the hand-over explicitly:
 * MM_TSAN_RELEASE(obj) before publishing into obj, MM_TSAN_ACQUIRE(obj) after
 * taking out of it. Outside TSan builds all of this compiles to nothing.
 */
#ifndef MM_TSAN_H
#define MM_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define MM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MM_TSAN 1
#endif
#endif

#ifdef MM_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define MM_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define MM_TSAN_RELEASE(p) __tsan_release((void *)(p))
#define MM_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define MM_TSAN_ACQUIRE(p) ((void)0)
#define MM_TSAN_RELEASE(p) ((void)0)
#define MM_NO_TSAN
#endif

#endif
