//! `rand_core` 0.10 over ring's `SystemRandom`, so `rsa` draws from the OS CSPRNG.

use ring::rand::{SecureRandom, SystemRandom};
use rsa::rand_core::{TryCryptoRng, TryRng};

pub(crate) struct RingRng(SystemRandom);

impl RingRng {
    pub(crate) fn new() -> Self {
        Self(SystemRandom::new())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub(crate) struct RngError;

impl TryRng for RingRng {
    type Error = RngError;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst).map_err(|_| RngError)
    }
}

impl TryCryptoRng for RingRng {}
