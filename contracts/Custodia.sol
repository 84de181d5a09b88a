// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ICustodia} from "./ICustodia.sol";
import {Membership} from "./modules/Membership.sol";
import {Agreements} from "./modules/Agreements.sol";
import {SignatureAuth} from "./modules/SignatureAuth.sol";
import {ConsentRegistry} from "./modules/ConsentRegistry.sol";
import {DataRegistry} from "./modules/DataRegistry.sol";
import {CheckpointRegistry} from "./modules/CheckpointRegistry.sol";

/**
 * @title Custodia
 * @notice The Custodia consent ledger (see {ICustodia}): membership, agreements, subject-signed
 * consent, data commitments/erasures and log checkpoints, plus the permission check that joins
 * membership, agreements and consent.
 */
contract Custodia is Agreements, ConsentRegistry, DataRegistry, CheckpointRegistry {
    /// @param admin registered as the first active ADMIN member.
    /// @param didRegistry_ optional ERC-1056 EthereumDIDRegistry for rotated subject keys; 0 = none.
    constructor(address admin, address didRegistry_) Membership(admin) SignatureAuth(didRegistry_) {}

    /// @inheritdoc ICustodia
    /// @dev Reverts {ConsentInvalidPurpose} for purpose > 31 and {ConsentInvalidCategories} for an
    /// empty mask or unknown bits: the question itself is malformed. Otherwise the first failing
    /// rule, in this order: PARTNER_NOT_MEMBER, PARTNER_INACTIVE, NOT_A_PARTNER, NO_AGREEMENT (no
    /// active agreement with validFrom <= at < validUntil covering the purpose and all requested
    /// categories), NO_CONSENT (never granted, or granted after `at`), CONSENT_REVOKED (revokedAt
    /// <= at), CONSENT_EXPIRED (at >= expiresAt), CONSENT_CATEGORIES. `agreementId` is the lowest
    /// covering agreement id whenever one exists (also when consent then fails), else 0. Consent is
    /// judged from its current stored state; query a past block for the state at that block.
    function checkPermission(
        address subject,
        address partner,
        uint8 purpose,
        uint16 categories,
        uint64 at
    ) external view returns (bool allowed, PermissionReason reason, uint256 agreementId) {
        _validateRequest(purpose, categories);
        (Role role, bool active) = _memberState(partner);
        if (role == Role.NONE) return (false, PermissionReason.PARTNER_NOT_MEMBER, 0);
        if (!active) return (false, PermissionReason.PARTNER_INACTIVE, 0);
        if (role != Role.PARTNER) return (false, PermissionReason.NOT_A_PARTNER, 0);
        agreementId = _coveringAgreement(partner, purpose, categories, at);
        if (agreementId == 0) return (false, PermissionReason.NO_AGREEMENT, 0);
        Consent memory c = _consentOf(subject, partner, purpose);
        if (c.grantedAt == 0 || c.grantedAt > at) return (false, PermissionReason.NO_CONSENT, agreementId);
        if (c.revokedAt != 0 && c.revokedAt <= at) return (false, PermissionReason.CONSENT_REVOKED, agreementId);
        if (c.expiresAt != 0 && at >= c.expiresAt) return (false, PermissionReason.CONSENT_EXPIRED, agreementId);
        if (c.categories & categories != categories) {
            return (false, PermissionReason.CONSENT_CATEGORIES, agreementId);
        }
        return (true, PermissionReason.OK, agreementId);
    }
}
