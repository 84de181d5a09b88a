// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ICustodia} from "../ICustodia.sol";
import {Membership} from "./Membership.sol";
import {ALL_CATEGORIES} from "./Constants.sol";

/**
 * @title Agreements
 * @notice Data-sharing agreements between the network and a PARTNER member: which purposes and
 * data categories the partner may ask for, and during which window [validFrom, validUntil).
 */
abstract contract Agreements is Membership {
    uint256 private _agreementCount;
    mapping(uint256 id => Agreement) private _agreements;
    mapping(address partner => uint256[] ids) private _agreementIds;

    /// @inheritdoc ICustodia
    /// @dev Reverts {MembershipUnauthorized} unless the caller is an active ADMIN,
    /// {AgreementNotPartner} unless `partner` is an active PARTNER, and {AgreementInvalid} when
    /// purposes == 0, categories is 0 or has unknown bits, or validFrom >= validUntil.
    function registerAgreement(
        address partner,
        uint32 purposes,
        uint16 categories,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 termsHash
    ) external returns (uint256 id) {
        _requireActive(Role.ADMIN);
        (Role role, bool active) = _memberState(partner);
        if (role != Role.PARTNER || !active) revert AgreementNotPartner(partner);
        if (purposes == 0 || categories == 0 || categories & ~ALL_CATEGORIES != 0 || validFrom >= validUntil) {
            revert AgreementInvalid();
        }
        unchecked {
            id = ++_agreementCount;
        }
        _agreements[id] = Agreement({
            partner: partner,
            purposes: purposes,
            categories: categories,
            validFrom: validFrom,
            validUntil: validUntil,
            active: true,
            termsHash: termsHash
        });
        _agreementIds[partner].push(id);
        emit AgreementRegistered(id, partner, purposes, categories, validFrom, validUntil, termsHash);
    }

    /// @inheritdoc ICustodia
    /// @dev Reverts {MembershipUnauthorized} unless the caller is an active ADMIN,
    /// {AgreementUnknown} for an id never issued and {AgreementAlreadyEnded} if already ended.
    /// An ended agreement never again covers any request, whatever the evaluated time.
    function endAgreement(uint256 id) external {
        _requireActive(Role.ADMIN);
        Agreement storage a = _agreements[id];
        address partner = a.partner;
        if (partner == address(0)) revert AgreementUnknown(id);
        if (!a.active) revert AgreementAlreadyEnded(id);
        a.active = false;
        emit AgreementEnded(id, partner);
    }

    /// @notice The agreement `id`; all zero (partner == address(0)) when no such id was issued.
    function agreement(uint256 id) external view returns (Agreement memory) {
        return _agreements[id];
    }

    /// @notice Ids of every agreement ever registered for `partner`, ended ones included, oldest first.
    function agreementsOf(address partner) external view returns (uint256[] memory) {
        return _agreementIds[partner];
    }

    /// @dev The lowest id of an active agreement of `partner` valid at `at` (validFrom <= at <
    /// validUntil) that covers `purpose` and every bit of `categories`; 0 when there is none.
    function _coveringAgreement(
        address partner,
        uint8 purpose,
        uint16 categories,
        uint64 at
    ) internal view returns (uint256) {
        uint256[] storage ids = _agreementIds[partner];
        uint256 n = ids.length;
        for (uint256 i; i < n; ) {
            uint256 id = ids[i];
            Agreement storage a = _agreements[id];
            if (
                a.active &&
                a.validFrom <= at &&
                at < a.validUntil &&
                (a.purposes >> purpose) & 1 == 1 &&
                a.categories & categories == categories
            ) return id;
            unchecked {
                ++i;
            }
        }
        return 0;
    }
}
