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
 * @dev A signature is accepted when it recovers to the subject itself or, if an ERC-1056 registry
 * was configured, to the registry's current `identityOwner(subject)` (key rotation). The direct
 * comparison runs first so the common case makes no external call.
 */
abstract contract SignatureAuth is ICustodia, EIP712 {
    /// @dev Optional ERC-1056 registry; address(0) disables owner delegation.
    IERC1056 private immutable _didRegistry;

    constructor(address didRegistry_) EIP712("Custodia", "1") {
        _didRegistry = IERC1056(didRegistry_);
    }

    /// @notice The ERC-1056 registry consulted for rotated subject keys, or address(0) if none.
    function didRegistry() external view returns (address) {
        return address(_didRegistry);
    }

    /// @dev Reverts with {SignatureInvalid} unless `signature` over the EIP-712 digest of
    /// `structHash` was made by `subject` or by its ERC-1056 owner. `recovered` in the error is
    /// address(0) when the signature cannot be parsed (wrong length, high s, bad v).
    function _requireSignedBy(address subject, bytes32 structHash, bytes calldata signature) internal view {
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(
            _hashTypedDataV4(structHash),
            signature
        );
        if (err == ECDSA.RecoverError.NoError) {
            if (recovered == subject) return;
            IERC1056 registry = _didRegistry;
            if (address(registry) != address(0) && registry.identityOwner(subject) == recovered) return;
        } else {
            recovered = address(0);
        }
        revert SignatureInvalid(subject, recovered);
    }

    /// @dev Reverts with {SignatureExpired} once `deadline` has passed (it is inclusive).
    function _requireNotExpired(uint64 deadline) internal view {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
    }
}
