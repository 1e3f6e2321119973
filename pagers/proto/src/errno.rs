//! POSIX `errno` values, as the servers return them and `user/rt` reports them.

abi::numbered! {
    /// An error number (Linux's values, so they read as a reader of the lecture (docs/lecture.md)
    /// expects).
    pub enum Errno {
        EPERM = 1,
        ENOENT = 2,
        ESRCH = 3,
        EINTR = 4,
        EIO = 5,
        E2BIG = 7,
        ENOEXEC = 8,
        EBADF = 9,
        ECHILD = 10,
        EAGAIN = 11,
        ENOMEM = 12,
        EACCES = 13,
        EFAULT = 14,
        EBUSY = 16,
        EEXIST = 17,
        EXDEV = 18,
        ENODEV = 19,
        ENOTDIR = 20,
        EISDIR = 21,
        EINVAL = 22,
        ENFILE = 23,
        EMFILE = 24,
        ETXTBSY = 26,
        EFBIG = 27,
        ENOSPC = 28,
        ESPIPE = 29,
        EROFS = 30,
        EPIPE = 32,
        ENAMETOOLONG = 36,
        ENOSYS = 38,
        ENOTEMPTY = 39,
        EOVERFLOW = 75,
        ETIMEDOUT = 110,
        EINPROGRESS = 115,
    }
}

impl Errno {
    /// The symbolic name, as a C programmer would print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::EPERM => "EPERM",
            Self::ENOENT => "ENOENT",
            Self::ESRCH => "ESRCH",
            Self::EINTR => "EINTR",
            Self::EIO => "EIO",
            Self::E2BIG => "E2BIG",
            Self::ENOEXEC => "ENOEXEC",
            Self::EBADF => "EBADF",
            Self::ECHILD => "ECHILD",
            Self::EAGAIN => "EAGAIN",
            Self::ENOMEM => "ENOMEM",
            Self::EACCES => "EACCES",
            Self::EFAULT => "EFAULT",
            Self::EBUSY => "EBUSY",
            Self::EEXIST => "EEXIST",
            Self::EXDEV => "EXDEV",
            Self::ENODEV => "ENODEV",
            Self::ENOTDIR => "ENOTDIR",
            Self::EISDIR => "EISDIR",
            Self::EINVAL => "EINVAL",
            Self::ENFILE => "ENFILE",
            Self::EMFILE => "EMFILE",
            Self::ETXTBSY => "ETXTBSY",
            Self::EFBIG => "EFBIG",
            Self::ENOSPC => "ENOSPC",
            Self::ESPIPE => "ESPIPE",
            Self::EROFS => "EROFS",
            Self::EPIPE => "EPIPE",
            Self::ENAMETOOLONG => "ENAMETOOLONG",
            Self::ENOSYS => "ENOSYS",
            Self::ENOTEMPTY => "ENOTEMPTY",
            Self::EOVERFLOW => "EOVERFLOW",
            Self::ETIMEDOUT => "ETIMEDOUT",
            Self::EINPROGRESS => "EINPROGRESS",
        }
    }
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a kernel error means to a POSIX caller.
impl From<abi::Error> for Errno {
    fn from(e: abi::Error) -> Self {
        match e {
            abi::Error::NotEnoughMemory => Self::ENOMEM,
            abi::Error::InsufficientRights => Self::EACCES,
            abi::Error::InvalidCapability => Self::EBADF,
            _ => Self::EINVAL,
        }
    }
}
