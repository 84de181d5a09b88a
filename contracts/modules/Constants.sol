// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @dev Highest purpose id the ledger accepts (agreements carry purposes as a uint32 bitmask).
/// Mirrors MAX_PURPOSE_ID in core/domain.ts.
uint8 constant MAX_PURPOSE_ID = 31;

/// @dev Every known data-category bit (7 categories). Mirrors ALL_CATEGORIES in core/domain.ts.
uint16 constant ALL_CATEGORIES = 0x7f;
