// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ICustodia} from "../ICustodia.sol";
import {IERC1056} from "./IERC1056.sol";

/**
 * @title SignatureAuth
 * @notice EIP-712 domain ("Custodia", "1"; readable through ERC-5267 `eip712Domain()`) and the
 * subject-signature check shared by the consent and data modules.
 * @dev A signature is accepted when it recovers to the subject's controller: the subject itself,
 * or, after an ERC-1056 key rotation has been synced with {syncController}, the registry's owner
 * of the identity. Once synced, the old key is refused: rotation retires it. The controller is
 * read from this contract's own storage (one slot), so no external call sits on the signature
 * path; {syncController} is permissionless because it only copies the registry's truth.
 */
abstract contract SignatureAuth is ICustodia, EIP712 {
    /// @dev Optional ERC-1056 registry; address(0) disables owner delegation.
    IERC1056 private immutable _didRegistry;

    /// @dev A subject's controller when it is not the subject itself (0 = the subject).
    mapping(address subject => address controller) private _controllers;

    constructor(address didRegistry_) EIP712("Custodia", "1") {
        _didRegistry = IERC1056(didRegistry_);
    }

    /// @notice The ERC-1056 registry consulted for rotated subject keys, or address(0) if none.
    function didRegistry() external view returns (address) {
        return address(_didRegistry);
    }

    /// @notice Copies the ERC-1056 registry's current owner of `subject` into this contract, so
    /// signatures by the new key are accepted and the old key's are refused. Anyone may call it.
    /// Requires a configured registry. Emits {ControllerSynced}.
    function syncController(address subject) external {
        IERC1056 registry = _didRegistry;
        if (address(registry) == address(0)) revert ControllerNoRegistry();
        address owner = registry.identityOwner(subject);
        _controllers[subject] = owner == subject ? address(0) : owner;
        emit ControllerSynced(subject, owner);
    }

    /// @notice The key whose signatures act for `subject`: itself unless a rotation was synced.
    function controllerOf(address subject) external view returns (address) {
        address c = _controllers[subject];
        return c == address(0) ? subject : c;
    }

    /// @dev Reverts with {SignatureInvalid} unless `signature` over the EIP-712 digest of
    /// `structHash` was made by the subject's controller. `recovered` in the error is
    /// address(0) when the signature cannot be parsed (wrong length, high s, bad v).
    function _requireSignedBy(address subject, bytes32 structHash, bytes calldata signature) internal view {
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(
            _hashTypedDataV4(structHash),
            signature
        );
        if (err == ECDSA.RecoverError.NoError) {
            address expected = _controllers[subject];
            if (recovered == (expected == address(0) ? subject : expected)) return;
        } else {
            recovered = address(0);
        }
        revert SignatureInvalid(subject, recovered);
    }

    /// @dev Direct calls authenticate the subject by msg.sender: refused once the subject's key
    /// was rotated away (its controller must sign instead).
    function _requireSelfControlled(address subject) internal view {
        if (_controllers[subject] != address(0)) revert SignatureInvalid(subject, subject);
    }

    /// @dev Reverts with {SignatureExpired} once `deadline` has passed (it is inclusive).
    function _requireNotExpired(uint64 deadline) internal view {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
    }
}
