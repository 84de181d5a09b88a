// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ICustodia} from "../ICustodia.sol";
import {SignatureAuth} from "./SignatureAuth.sol";
import {ALL_CATEGORIES, MAX_PURPOSE_ID} from "./Constants.sol";

/**
 * @title ConsentRegistry
 * @notice Subject-owned consent: one packed storage word per (subject, partner, purpose).
 * @dev Word layout (low to high bits): categories uint16 [0,16), expiresAt uint40 [16,56),
 * grantedAt uint40 [56,96), revokedAt uint40 [96,136), nonce uint32 [136,168). The word is keyed
 * by keccak256(abi.encodePacked(subject, partner, uint8 purpose)) (core's `consentKey`).
 *
 * Nonces are per consent key, not per subject: a wallet can sign consents to several partners
 * concurrently, and because the nonce lives in the consent's own word a first grant writes one
 * fresh slot only. Every grant and revoke, signed or direct, consumes the current nonce, so a
 * direct action also kills any signed message still outstanding for that consent. Nonces wrap
 * after 2^32 operations on one key, which needs 2^32 transactions and cannot happen in practice.
 */
abstract contract ConsentRegistry is SignatureAuth {
    bytes32 private constant _GRANT_TYPEHASH =
        keccak256(
            "ConsentGrant(address subject,address partner,uint8 purpose,uint16 categories,uint64 expiresAt,bytes32 receiptHash,uint32 nonce,uint64 deadline)"
        );
    bytes32 private constant _REVOKE_TYPEHASH =
        keccak256("ConsentRevoke(address subject,address partner,uint8 purpose,uint32 nonce,uint64 deadline)");

    uint256 private constant _EXPIRES_SHIFT = 16;
    uint256 private constant _GRANTED_SHIFT = 56;
    uint256 private constant _REVOKED_SHIFT = 96;
    uint256 private constant _NONCE_SHIFT = 136;
    /// @dev categories | expiresAt | grantedAt: the bits a revoke keeps.
    uint256 private constant _KEEP_ON_REVOKE = (uint256(1) << _REVOKED_SHIFT) - 1;

    mapping(bytes32 consentKey => uint256 word) private _consents;

    /// @inheritdoc ICustodia
    /// @dev Checks, in order: deadline ({SignatureExpired}), signature ({SignatureInvalid}),
    /// purpose ({ConsentInvalidPurpose}), categories ({ConsentInvalidCategories}), partner
    /// ({ConsentInvalidPartner}), expiry ({ConsentInvalidExpiry}: 0 or in the future, and within
    /// uint40), nonce ({NonceInvalid}). A grant while the consent is active replaces categories
    /// and expiry; a grant after a revoke re-activates it. The receipt hash is only emitted, never
    /// stored. The event's nonce is the one this grant consumed.
    function grantConsent(ConsentGrant calldata grant, bytes calldata signature) external {
        ConsentGrant memory g = grant; // one validated decode; cheaper than per-member calldata reads
        _requireNotExpired(g.deadline);
        _requireSignedBy(g.subject, _hashStruct(_GRANT_TYPEHASH, grant), signature);
        _grant(g.subject, g.partner, g.purpose, g.categories, g.expiresAt, g.receiptHash, g.nonce, true);
    }

    /// @inheritdoc ICustodia
    /// @dev Same rules as {grantConsent} without signature, deadline and nonce check; still
    /// consumes the consent's nonce so that outstanding signed messages for it become invalid.
    function grantConsentDirect(
        address partner,
        uint8 purpose,
        uint16 categories,
        uint64 expiresAt,
        bytes32 receiptHash
    ) external {
        _requireSelfControlled(msg.sender);
        _grant(msg.sender, partner, purpose, categories, expiresAt, receiptHash, 0, false);
    }

    /// @inheritdoc ICustodia
    /// @dev Checks, in order: deadline ({SignatureExpired}), signature ({SignatureInvalid}), nonce
    /// ({NonceInvalid}), then that the consent is active, i.e. granted and not revoked
    /// ({ConsentNotActive}; an expired but unrevoked consent may still be revoked). Sets revokedAt
    /// to this block's timestamp. The event's nonce is the one this revoke consumed.
    function revokeConsent(ConsentRevoke calldata revoke, bytes calldata signature) external {
        _requireNotExpired(revoke.deadline);
        address subject = revoke.subject;
        _requireSignedBy(subject, _hashStruct(_REVOKE_TYPEHASH, revoke), signature);
        _revoke(subject, revoke.partner, revoke.purpose, revoke.nonce, true);
    }

    /// @inheritdoc ICustodia
    /// @dev Reverts {ConsentNotActive} unless the caller's consent is granted and not revoked.
    /// Consumes the consent's nonce.
    function revokeConsentDirect(address partner, uint8 purpose) external {
        _requireSelfControlled(msg.sender);
        _revoke(msg.sender, partner, purpose, 0, false);
    }

    /// @notice The stored state of one consent; all zero when never granted. `nonce` is the value
    /// the next signed grant or revoke for this consent must carry.
    function consent(address subject, address partner, uint8 purpose) external view returns (Consent memory) {
        return _consentOf(subject, partner, purpose);
    }

    /// @dev The consent state stored for (subject, partner, purpose).
    function _consentOf(address subject, address partner, uint8 purpose) internal view returns (Consent memory) {
        return _unpack(_consents[_consentKey(subject, partner, purpose)]);
    }

    /// @dev Reverts unless purpose <= 31 and categories is a non-empty mask of known bits.
    function _validateRequest(uint8 purpose, uint16 categories) internal pure {
        if (purpose > MAX_PURPOSE_ID) revert ConsentInvalidPurpose(purpose);
        if (categories == 0 || categories & ~ALL_CATEGORIES != 0) revert ConsentInvalidCategories(categories);
    }

    /// @dev Validates, checks the nonce (when `signed`), writes categories, expiresAt, grantedAt =
    /// now, revokedAt = 0 and nonce + 1 in one SSTORE, then emits.
    function _grant(
        address subject,
        address partner,
        uint8 purpose,
        uint16 categories,
        uint64 expiresAt,
        bytes32 receiptHash,
        uint32 given,
        bool signed
    ) private {
        _validateRequest(purpose, categories);
        if (partner == address(0)) revert ConsentInvalidPartner(partner);
        if (expiresAt != 0 && (expiresAt <= block.timestamp || expiresAt > type(uint40).max)) {
            revert ConsentInvalidExpiry(expiresAt);
        }
        bytes32 key = _consentKey(subject, partner, purpose);
        uint32 nonce = uint32(_consents[key] >> _NONCE_SHIFT);
        if (signed && given != nonce) revert NonceInvalid(subject, nonce, given);
        unchecked {
            _consents[key] =
                uint256(categories) |
                (uint256(expiresAt) << _EXPIRES_SHIFT) |
                (block.timestamp << _GRANTED_SHIFT) |
                (uint256(uint32(nonce + 1)) << _NONCE_SHIFT);
        }
        emit ConsentGranted(subject, partner, purpose, categories, expiresAt, receiptHash, nonce);
    }

    /// @dev Checks the nonce (when `signed`) and that the consent is active; keeps categories,
    /// expiresAt and grantedAt, sets revokedAt = now and nonce + 1 in one SSTORE, then emits.
    function _revoke(address subject, address partner, uint8 purpose, uint32 given, bool signed) private {
        bytes32 key = _consentKey(subject, partner, purpose);
        uint256 word = _consents[key];
        uint32 nonce = uint32(word >> _NONCE_SHIFT);
        if (signed && given != nonce) revert NonceInvalid(subject, nonce, given);
        if (uint40(word >> _GRANTED_SHIFT) == 0 || uint40(word >> _REVOKED_SHIFT) != 0) {
            revert ConsentNotActive(subject, partner, purpose);
        }
        unchecked {
            _consents[key] =
                (word & _KEEP_ON_REVOKE) |
                (block.timestamp << _REVOKED_SHIFT) |
                (uint256(uint32(nonce + 1)) << _NONCE_SHIFT);
        }
        emit ConsentRevoked(subject, partner, purpose, nonce);
    }

    /// @dev EIP-712 hashStruct of a static calldata struct: keccak256(typehash ‖ the struct's
    /// calldata words), which equals keccak256(abi.encode(typehash, struct)) for clean input
    /// because every member is one static word. Assembly because Solidity's abi.encode of a
    /// calldata struct re-validates member by member (~800 gas more per grant). Dirty input cannot
    /// slip through: the callers decode every member with Solidity's validation (grantConsent
    /// copies the struct to memory, revokeConsent reads each member) before any effect.
    function _hashStruct(bytes32 typehash, ConsentGrant calldata grant) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            calldatacopy(add(m, 0x20), grant, 0x100)
            h := keccak256(m, 0x120)
        }
    }

    /// @dev As above for ConsentRevoke (5 words).
    function _hashStruct(bytes32 typehash, ConsentRevoke calldata revoke) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            calldatacopy(add(m, 0x20), revoke, 0xa0)
            h := keccak256(m, 0xc0)
        }
    }

    /// @dev core's consentKey: keccak256(abi.encodePacked(subject, partner, uint8 purpose)).
    function _consentKey(address subject, address partner, uint8 purpose) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(subject, partner, purpose));
    }

    function _unpack(uint256 word) private pure returns (Consent memory c) {
        c.categories = uint16(word);
        c.expiresAt = uint40(word >> _EXPIRES_SHIFT);
        c.grantedAt = uint40(word >> _GRANTED_SHIFT);
        c.revokedAt = uint40(word >> _REVOKED_SHIFT);
        c.nonce = uint32(word >> _NONCE_SHIFT);
    }
}
