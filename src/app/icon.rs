//! 界面上的小图标：内联 SVG，描边用 `currentColor`（跟着文字颜色与主题走），不依赖字体里有没有这个符号。
//! 图标只是装饰（`aria-hidden`）：按钮的名字总写在按钮自己的 `aria-label`（与 `title`）上。

use leptos::prelude::*;

/// 下载。
pub const DOWNLOAD: &str = "M12 4v11M7 10l5 5 5-5M5 20h14";
/// 以此图继续编辑、编辑。
pub const EDIT: &str = "M4 20h4L19 9l-4-4L4 16zM13 7l4 4";
/// 复制。
pub const COPY: &str = "M9 9h11v11H9zM5 15H4V4h11v1";
/// 保存为提示词。
pub const BOOKMARK: &str = "M6 3h12v18l-6-4-6 4z";
/// 重试。
pub const RETRY: &str = "M20 12a8 8 0 1 1-2.34-5.66M20 4v6h-6";
/// 恢复（从回收站）。
pub const RESTORE: &str = "M4 12a8 8 0 1 0 2.34-5.66M4 4v6h6";
/// 取消（停止）。
pub const STOP: &str = "M7 7h10v10H7z";
/// 删除。
pub const TRASH: &str = "M4 7h16M10 11v6M14 11v6M9 7V4h6v3M6 7l1 13h10l1-13";
/// 更多操作（三个点）。
pub const MORE: &str = "M5 12h.5M12 12h.5M19 12h.5";
/// 重新保存（磁盘）。
pub const SAVE: &str = "M5 4h11l3 3v13H5zM8 4v5h8M8 20v-6h8v6";
/// 深色 / 浅色（月亮）。
pub const THEME: &str = "M20 14.5A8 8 0 1 1 9.5 4a6.5 6.5 0 0 0 10.5 10.5z";
/// 提示词栏的选项（滑杆）。
pub const OPTIONS: &str = "M4 7h9M17 7h3M15 5v4M4 17h3M11 17h9M9 15v4";

/// 一个图标（18 像素，可用 CSS 改大小）。
#[component]
pub fn Icon(d: &'static str) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">
            <path d=d></path>
        </svg>
    }
}
