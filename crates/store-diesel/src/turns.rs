//! The group-commit turns of PostgreSQL's registrations (`group_commit`): which one
//! an organization's registrations take, and which turns organizations share.

/// The turns registrations take on PostgreSQL: each organization's in one of them,
/// so at most this many batches of one instance are in the database at once (one
/// per core of the machine measured, `docs/benchmarks.md`).
pub(crate) const POSTGRES_TURNS: u64 = 2;

/// The PostgreSQL turn of `organization`'s registrations: one of [`POSTGRES_TURNS`],
/// the same for every instance and every run.
pub(crate) fn postgres_turn(organization: &str) -> String {
    // FNV-1a: stable across processes, unlike the standard library's hasher.
    let hash = organization
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{SHARED_TURN}{}", hash % POSTGRES_TURNS)
}

/// The prefix of the turns organizations share on PostgreSQL.
const SHARED_TURN: &str = "registrations:";

/// Whether `turn` is one organizations share (PostgreSQL's `postgres_turn`).
pub(crate) fn is_shared(turn: &str) -> bool {
    turn.starts_with(SHARED_TURN)
}
