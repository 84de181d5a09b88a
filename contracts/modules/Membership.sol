// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ICustodia} from "../ICustodia.sol";

/**
 * @title Membership
 * @notice Permissioned membership: one role per account, registered and deactivated by an active
 * ADMIN. Deactivated members keep their record (and their history) but lose every right, and
 * cannot be registered again.
 */
abstract contract Membership is ICustodia {
    mapping(address account => Member) private _members;

    /// @param admin the first member, registered as an active ADMIN with zero DID and org hashes.
    constructor(address admin) {
        _register(admin, bytes32(0), Role.ADMIN, bytes32(0));
    }

    /// @inheritdoc ICustodia
    /// @dev Reverts {MembershipUnauthorized} unless the caller is an active ADMIN,
    /// {MembershipInvalidAccount} for address(0), {MembershipInvalidRole} for NONE and
    /// {MembershipExists} if the account was ever registered.
    function registerMember(address account, bytes32 didHash, Role role, bytes32 orgHash) external {
        _requireActive(Role.ADMIN);
        _register(account, didHash, role, orgHash);
    }

    /// @inheritdoc ICustodia
    /// @dev Reverts {MembershipUnauthorized} unless the caller is an active ADMIN,
    /// {MembershipUnknown} for an unregistered account and {MembershipInactive} if already inactive.
    function deactivateMember(address account) external {
        _requireActive(Role.ADMIN);
        Member storage m = _members[account];
        if (m.role == Role.NONE) revert MembershipUnknown(account);
        if (!m.active) revert MembershipInactive(account);
        m.active = false;
        emit MemberDeactivated(account);
    }

    /// @notice The membership record of `account`; role NONE (all zero) when it was never registered.
    function member(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @dev Reverts {MembershipUnauthorized}(msg.sender, needed) unless the caller is an active
    /// member holding `needed`.
    function _requireActive(Role needed) internal view {
        (Role role, bool active) = _memberState(msg.sender);
        if (role != needed || !active) revert MembershipUnauthorized(msg.sender, needed);
    }

    /// @dev Role and active flag of `account` (one storage read).
    function _memberState(address account) internal view returns (Role role, bool active) {
        Member storage m = _members[account];
        return (m.role, m.active);
    }

    function _register(address account, bytes32 didHash, Role role, bytes32 orgHash) private {
        if (account == address(0)) revert MembershipInvalidAccount(account);
        if (role == Role.NONE) revert MembershipInvalidRole(role);
        Member storage m = _members[account];
        if (m.role != Role.NONE) revert MembershipExists(account);
        m.didHash = didHash;
        m.orgHash = orgHash;
        m.role = role;
        m.active = true;
        emit MemberRegistered(account, role, didHash, orgHash);
    }
}
