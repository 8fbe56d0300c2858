//! Pointers from C, read in one place: handles (objects peerlb allocates for C),
//! structs the caller owns, out-parameters, strings and arrays. Every entry point reads its
//! arguments through these functions, so NULL checks, ownership and string decoding are
//! written once. The pattern is rustls-ffi's `Castable`:
//!
//! * Each C type implements [`Handle`], naming the Rust value its pointers point to
//!   ([`Handle::Target`]) and who owns that memory ([`Handle::Ownership`]): [`Owned`]
//!   handles are `Box`es peerlb made ([`into_raw`]) and frees ([`free`]); [`CallerOwned`]
//!   structs (`peerlb_choice`, `peerlb_request`, vtables) are the caller's memory, only
//!   read and written.
//! * [`borrow`] / [`borrow_mut`] turn a pointer into a reference, NULL into
//!   `invalid-argument` ("list is NULL").
//! * [`out`] checks an out-parameter before the work and [`Out::write`] writes it after,
//!   so out-parameters are written only on success.
//! * [`c_str`] reads NUL-terminated strings, [`str_at`] counted ones (peer ids),
//!   [`slice`] arrays and [`convert_each`] converts them. A length from C is never trusted
//!   for an allocation: it is checked against what an array can be, and results grow with
//!   the elements actually read.
//! * [`string_out`] gives C an owned string, [`free_string`] takes it back.

use std::borrow::Cow;
use std::ffi::{c_char, CStr, CString};
use std::fmt::Display;
use std::marker::PhantomData;
use std::ptr::NonNull;

use peerlb::Error;

use crate::boundary::guard_value;
use crate::error::invalid;

/// Who owns the memory behind a [`Handle`] pointer (a marker type).
pub(crate) trait Ownership {}

/// peerlb allocated it (a `Box<Target>` from [`into_raw`]); C frees it with the type's
/// `*_free` function, which calls [`free`].
pub(crate) struct Owned;

/// The caller's memory (a struct C fills in or passes); peerlb never frees it.
pub(crate) struct CallerOwned;

impl Ownership for Owned {}
impl Ownership for CallerOwned {}

/// A C type and the Rust value its pointers point to.
pub(crate) trait Handle {
    /// The Rust value behind a `*const Self` / `*mut Self`.
    type Target;
    /// [`Owned`] or [`CallerOwned`].
    type Ownership: Ownership;
    /// How messages name an argument of this type: `"list"` gives "list is NULL".
    const NAME: &'static str;
}

/// The error for a NULL argument called `name` (out of line: callers inline only their
/// success path).
#[cold]
#[inline(never)]
fn null(name: impl Display) -> Error {
    invalid(format!("{name} is NULL"))
}

/// Gives C a new handle owning `value`; C frees it with the type's `*_free`.
pub(crate) fn into_raw<H: Handle<Ownership = Owned>>(value: H::Target) -> *mut H {
    Box::into_raw(Box::new(value)).cast()
}

/// Borrows what `ptr` points to; NULL is `invalid-argument`.
///
/// # Safety
/// `ptr` must be NULL or point to a live `H::Target` (for an [`Owned`] handle: one from
/// [`into_raw`], not yet freed) that nothing mutates during `'a`.
pub(crate) unsafe fn borrow<'a, H: Handle>(ptr: *const H) -> Result<&'a H::Target, Error> {
    // SAFETY: forwarded contract; the pointer is really a pointer to H::Target.
    unsafe { ptr.cast::<H::Target>().as_ref() }.ok_or_else(|| null(H::NAME))
}

/// Like [`borrow`], for arguments where NULL means "not given".
///
/// # Safety
/// As [`borrow`].
pub(crate) unsafe fn borrow_optional<'a, H: Handle>(ptr: *const H) -> Option<&'a H::Target> {
    // SAFETY: forwarded contract.
    unsafe { ptr.cast::<H::Target>().as_ref() }
}

/// Borrows what `ptr` points to mutably; NULL is `invalid-argument`.
///
/// # Safety
/// As [`borrow`], and nothing else may use the value during `'a`.
pub(crate) unsafe fn borrow_mut<'a, H: Handle>(ptr: *mut H) -> Result<&'a mut H::Target, Error> {
    // SAFETY: forwarded contract.
    unsafe { ptr.cast::<H::Target>().as_mut() }.ok_or_else(|| null(H::NAME))
}

/// Frees a handle from [`into_raw`] (NULL is ignored), behind the panic boundary: the body
/// of every `*_free` function.
///
/// # Safety
/// `ptr` must be NULL or from [`into_raw`], not yet freed, and not used afterwards.
pub(crate) unsafe fn free<H: Handle<Ownership = Owned>>(ptr: *mut H) {
    guard_value((), || {
        if !ptr.is_null() {
            // SAFETY: forwarded contract: a Box<H::Target> made by into_raw.
            drop(unsafe { Box::from_raw(ptr.cast::<H::Target>()) });
        }
    })
}

/// An out-parameter checked before the work; [`Out::write`] fills it after.
pub(crate) struct Out<'a, T> {
    ptr: NonNull<T>,
    _borrow: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Writes the result (the previous contents are overwritten, not dropped: C memory).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `out` checked the pointer; the caller of `out` promised it is writable.
        unsafe { self.ptr.as_ptr().write(value) }
    }
}

/// Checks out-parameter `name`; NULL is `invalid-argument`. Call it before doing the work,
/// and write the result last, so a failed call leaves `*ptr` untouched.
///
/// # Safety
/// `ptr` must be NULL or writable for a `T` during `'a`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, name: &str) -> Result<Out<'a, T>, Error> {
    NonNull::new(ptr)
        .map(|ptr| Out {
            ptr,
            _borrow: PhantomData,
        })
        .ok_or_else(|| null(name))
}

/// Like [`out`], for out-parameters that may be NULL ("not wanted").
///
/// # Safety
/// As [`out`].
pub(crate) unsafe fn out_optional<'a, T>(ptr: *mut T) -> Option<Out<'a, T>> {
    NonNull::new(ptr).map(|ptr| Out {
        ptr,
        _borrow: PhantomData,
    })
}

/// A required callback (a C function pointer, `None` when NULL).
pub(crate) fn required<F>(callback: Option<F>, name: &str) -> Result<F, Error> {
    callback.ok_or_else(|| null(name))
}

/// Reads a NUL-terminated UTF-8 string; NULL and non-UTF-8 are `invalid-argument`.
///
/// # Safety
/// `ptr` must be NULL or a NUL-terminated string that lives and does not change during `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: forwarded contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|e| invalid(format!("{name} is not valid UTF-8: {e}")))
}

/// Reads a NUL-terminated string for people (an attempt's error message): NULL is
/// `invalid-argument`, bytes that are not UTF-8 are replaced by U+FFFD.
///
/// # Safety
/// As [`c_str`].
pub(crate) unsafe fn c_str_lossy<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<Cow<'a, str>, Error> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: forwarded contract.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_string_lossy())
}

/// Borrows a C array of `len` elements. Length 0 is empty (the pointer may be NULL); NULL
/// with a length, or a length no array can have (more than `isize::MAX` bytes), is
/// `invalid-argument`. `name` may be lazy (`format_args!`).
///
/// # Safety
/// `ptr` must be NULL or readable for `len` elements that do not change during `'a`.
pub(crate) unsafe fn slice<'a, T>(
    ptr: *const T,
    len: usize,
    name: impl Display,
) -> Result<&'a [T], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(invalid(format!("{name} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(invalid(format!("{name} has an impossible length {len}")));
    }
    // SAFETY: non-NULL, a possible length, and the caller gives `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Reads `len` bytes at `ptr` as UTF-8 (a peer id or backend name): NULL with a length, an
/// impossible length and non-UTF-8 are `invalid-argument`; the empty string is returned
/// as is (the core judges empty and over-long ids).
///
/// # Safety
/// As [`slice`].
pub(crate) unsafe fn str_at<'a>(
    ptr: *const c_char,
    len: usize,
    name: impl Display,
) -> Result<&'a str, Error> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { slice(ptr.cast::<u8>(), len, &name) }?;
    std::str::from_utf8(bytes).map_err(|e| invalid(format!("{name} is not valid UTF-8: {e}")))
}

/// Converts each element of a C array with `f` (given its index), stopping at the first
/// error. The result grows with the elements converted; nothing is reserved from the
/// array's length.
pub(crate) fn convert_each<T, U>(
    items: &[T],
    mut f: impl FnMut(usize, &T) -> Result<U, Error>,
) -> Result<Vec<U>, Error> {
    let mut converted = Vec::new();
    for (i, item) in items.iter().enumerate() {
        converted.push(f(i, item)?);
    }
    Ok(converted)
}

/// `text` as a C string; interior NULs (which C cannot represent) are shown as `\0`.
pub(crate) fn c_string(text: String) -> CString {
    CString::new(text).unwrap_or_else(|e| {
        let escaped = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\\0");
        CString::new(escaped).expect("NULs escaped")
    })
}

/// Gives C an owned copy of `text` (see [`c_string`]), freed with `peerlb_string_free`.
pub(crate) fn string_out(text: String) -> *mut c_char {
    c_string(text).into_raw()
}

/// Frees a string from [`string_out`] (NULL is ignored): the body of `peerlb_string_free`.
///
/// # Safety
/// `s` must be NULL or from [`string_out`], not yet freed.
pub(crate) unsafe fn free_string(s: *mut c_char) {
    guard_value((), || {
        if !s.is_null() {
            // SAFETY: forwarded contract: from CString::into_raw.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing;
    impl Handle for Thing {
        type Target = String;
        type Ownership = Owned;
        const NAME: &'static str = "thing";
    }

    #[test]
    fn handles_round_trip_and_null_is_named() {
        let raw = into_raw::<Thing>("hello".to_owned());
        unsafe {
            assert_eq!(borrow(raw).unwrap(), "hello");
            borrow_mut(raw).unwrap().push('!');
            assert_eq!(borrow(raw).unwrap(), "hello!");
            free(raw);
            free(std::ptr::null_mut::<Thing>());
            let err = borrow::<Thing>(std::ptr::null()).unwrap_err();
            assert!(err.to_string().ends_with("thing is NULL"), "{err}");
        }
    }

    #[test]
    fn out_parameters_are_checked_first() {
        let mut x = 0u32;
        unsafe {
            assert!(out::<u32>(std::ptr::null_mut(), "x").is_err());
            out(&mut x, "x").unwrap().write(5);
        }
        assert_eq!(x, 5);
    }

    #[test]
    fn lengths_are_bounded() {
        let bytes = [b'a', b'b'];
        unsafe {
            assert_eq!(str_at(bytes.as_ptr().cast(), 2, "id").unwrap(), "ab");
            assert_eq!(str_at(std::ptr::null(), 0, "id").unwrap(), "");
            assert!(str_at(std::ptr::null(), 3, "id").is_err());
            assert!(str_at(bytes.as_ptr().cast(), usize::MAX, "id").is_err());
            assert!(slice(bytes.as_ptr().cast::<u64>(), usize::MAX / 4, "a").is_err());
            let bad = [0xffu8];
            assert!(str_at(bad.as_ptr().cast(), 1, "id").is_err());
        }
    }

    #[test]
    fn strings_with_nul_are_escaped() {
        assert_eq!(c_string("a\0b".into()).to_str().unwrap(), "a\\0b");
        let s = string_out("x".into());
        unsafe { free_string(s) };
    }
}
