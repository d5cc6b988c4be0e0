//! Secret values: zeroized on drop, redacted in `Debug`, never `Display`ed.

use core::fmt;

use ff::Field;
use zeroize::Zeroize;

/// A secret scalar (a share, a polynomial coefficient, a signing key).
///
/// The value is overwritten with zero when dropped and prints as `Secret(<redacted>)`.
/// Copying it out with [`Secret::expose`] is explicit so reviews can find every use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<F: Field>(F);

impl<F: Field> Secret<F> {
    /// Wraps a secret value.
    pub fn new(value: F) -> Self {
        Secret(value)
    }

    /// Borrows the secret value.
    pub fn expose(&self) -> &F {
        &self.0
    }
}

impl<F: Field> Zeroize for Secret<F> {
    fn zeroize(&mut self) {
        // SAFETY: `self.0` is a valid, aligned `F`; a volatile write of another valid `F` keeps
        // the compiler from eliding the wipe of a value about to be dropped.
        unsafe { core::ptr::write_volatile(&mut self.0, F::ZERO) };
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    }
}

impl<F: Field> Drop for Secret<F> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<F: Field> fmt::Debug for Secret<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Secret bytes (encryption keys, seeds), zeroized on drop and redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// Borrows the bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new(blstrs::Scalar::from(123456789u64));
        let text = format!("{s:?}");
        assert_eq!(text, "Secret(<redacted>)");
        let b = SecretBytes::new(vec![0xAB; 4]);
        assert!(!format!("{b:?}").contains("ab"));
        assert!(!format!("{b:?}").contains("171"));
    }

    #[test]
    fn zeroize_wipes() {
        let mut s = Secret::new(blstrs::Scalar::from(5u64));
        s.zeroize();
        assert_eq!(*s.expose(), blstrs::Scalar::ZERO);
    }
}
