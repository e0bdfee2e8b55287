/// 服务器用 mimalloc 而不是 glibc 的 malloc：一批大图过后，内存几秒内还给系统
/// （实测见 docs/benchmarks.md 的 e 节；设置见 `tune_allocator`）。
#[cfg(feature = "ssr")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    tune_allocator();
    drafting_factory::cli::run().await
}

/// mimalloc.h 里 `mi_option_e` 的第 15 项 `mi_option_purge_delay`（libmimalloc-sys 没有导出这个常量）。
#[cfg(feature = "ssr")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// 两处设置，都是实测出来的（docs/benchmarks.md 的 e 节：4 个并发的 n = 16、每张 20 MB，
/// 10 秒后的 RSS 从默认设置的 146–181 MB 降到 42–50 MB）：
/// - 释放的内存立即还给系统（purge_delay = 0）。mimalloc 默认延迟 1 秒再还，而到期的归还要等某个线程
///   再分配内存时才做——一批大图之后服务器正好闲下来，于是一直不还（每秒从旁边线程调 `mi_collect` 也还不干净，试过）。
///   代价是大块内存再次使用时要重新缺页：每 MB 几十微秒，比起上游生成一张图的几秒可以忽略。
///   运维设了环境变量 `MIMALLOC_PURGE_DELAY` 时以它为准。
/// - 本进程不用透明大页：2 MB 的大页里只要还有一点在用，整页都算在 RSS 里、还不回去。
#[cfg(feature = "ssr")]
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set 只改 mimalloc 的一个全局选项值；选项号见上面的常量与下面的测试。
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    // SAFETY: prctl(PR_SET_THP_DISABLE) 只设置本进程的一个标志，不读写内存。失败（旧内核）也无妨。
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

// 不带 ssr 特性时（WASM 构建只编译 lib），二进制没有用处。
#[cfg(not(feature = "ssr"))]
fn main() {}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    /// 选项号确实是 purge_delay：它是唯一默认值为 1000（毫秒）的选项。mimalloc 升级改了顺序时这里会失败。
    #[test]
    fn option_15_is_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: 只读一个选项值。
        let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
