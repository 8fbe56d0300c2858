//! The names the TypeScript types give the core's lists: the error codes and the built-in
//! strategies. Both enums are napi-rs string enums (generated into `native.d.ts` as union
//! types) with an exhaustive conversion from the core's enum, so a code or strategy added to
//! the core does not compile here until it is added to the types too;
//! `__test__/types.test.js` checks the spellings against the core's at run time.

use napi_derive::napi;
use peerlb::{ErrorCode, StrategyKind};

/// The built-in strategies (the core's `StrategyKind::ALL`); a list's `strategy` is one of
/// them, optionally with a mode and options (`'hash-ring:fast?bounded=1.25'`).
#[napi(string_enum = "kebab-case")]
pub enum StrategyName {
    RoundRobin,
    Random,
    FewestPending,
    TwoRandomChoices,
    HashRing,
    Maglev,
    WeightedRoundRobin,
    PeakEwma,
    Prequal,
}

impl From<StrategyKind> for StrategyName {
    fn from(kind: StrategyKind) -> StrategyName {
        match kind {
            StrategyKind::RoundRobin => StrategyName::RoundRobin,
            StrategyKind::Random => StrategyName::Random,
            StrategyKind::FewestPending => StrategyName::FewestPending,
            StrategyKind::TwoRandomChoices => StrategyName::TwoRandomChoices,
            StrategyKind::HashRing => StrategyName::HashRing,
            StrategyKind::Maglev => StrategyName::Maglev,
            StrategyKind::WeightedRoundRobin => StrategyName::WeightedRoundRobin,
            StrategyKind::PeakEwma => StrategyName::PeakEwma,
            StrategyKind::Prequal => StrategyName::Prequal,
        }
    }
}

/// The `code` of every error the core reports: `PEERLB_` + the core's code in upper snake
/// case.
#[napi(string_enum)]
pub enum PeerlbErrorCode {
    #[napi(value = "PEERLB_INVALID_ARGUMENT")]
    InvalidArgument,
    #[napi(value = "PEERLB_ALREADY_STARTED")]
    AlreadyStarted,
    #[napi(value = "PEERLB_NOT_STARTED")]
    NotStarted,
    #[napi(value = "PEERLB_TIMEOUT")]
    Timeout,
    #[napi(value = "PEERLB_NO_DEADLINE")]
    NoDeadline,
    #[napi(value = "PEERLB_NO_PEER_AVAILABLE")]
    NoPeerAvailable,
    #[napi(value = "PEERLB_PEER_ALREADY_IN_LIST")]
    PeerAlreadyInList,
    #[napi(value = "PEERLB_PEER_NOT_IN_LIST")]
    PeerNotInList,
    #[napi(value = "PEERLB_TRANSPORT_FAILED")]
    TransportFailed,
    #[napi(value = "PEERLB_MULTIPLE_ERRORS")]
    MultipleErrors,
    #[napi(value = "PEERLB_SOURCE_FAILED")]
    SourceFailed,
    #[napi(value = "PEERLB_RETRY_EXHAUSTED")]
    RetryExhausted,
    #[napi(value = "PEERLB_DECLINED")]
    Declined,
    #[napi(value = "PEERLB_ALREADY_FINISHED")]
    AlreadyFinished,
    #[napi(value = "PEERLB_INTERNAL")]
    Internal,
    #[napi(value = "PEERLB_OVERLOADED")]
    Overloaded,
}

impl From<ErrorCode> for PeerlbErrorCode {
    fn from(code: ErrorCode) -> PeerlbErrorCode {
        match code {
            ErrorCode::InvalidArgument => PeerlbErrorCode::InvalidArgument,
            ErrorCode::AlreadyStarted => PeerlbErrorCode::AlreadyStarted,
            ErrorCode::NotStarted => PeerlbErrorCode::NotStarted,
            ErrorCode::Timeout => PeerlbErrorCode::Timeout,
            ErrorCode::NoDeadline => PeerlbErrorCode::NoDeadline,
            ErrorCode::NoPeerAvailable => PeerlbErrorCode::NoPeerAvailable,
            ErrorCode::PeerAlreadyInList => PeerlbErrorCode::PeerAlreadyInList,
            ErrorCode::PeerNotInList => PeerlbErrorCode::PeerNotInList,
            ErrorCode::TransportFailed => PeerlbErrorCode::TransportFailed,
            ErrorCode::MultipleErrors => PeerlbErrorCode::MultipleErrors,
            ErrorCode::SourceFailed => PeerlbErrorCode::SourceFailed,
            ErrorCode::RetryExhausted => PeerlbErrorCode::RetryExhausted,
            ErrorCode::Declined => PeerlbErrorCode::Declined,
            ErrorCode::AlreadyFinished => PeerlbErrorCode::AlreadyFinished,
            ErrorCode::Internal => PeerlbErrorCode::Internal,
            ErrorCode::Overloaded => PeerlbErrorCode::Overloaded,
        }
    }
}
