// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/**
 * @title MockDIDRegistry
 * @notice TEST ONLY. A minimal stand-in for the ERC-1056 EthereumDIDRegistry, implementing just
 * identityOwner and changeOwner with the registry's semantics (an identity owns itself until
 * its owner changes it). It is not the real registry: no delegates, attributes or meta-tx.
 */
contract MockDIDRegistry {
    mapping(address identity => address owner) private _owners;

    event DIDOwnerChanged(address indexed identity, address owner, uint256 previousChange);

    error NotOwner(address identity, address caller);

    /// @notice The current owner of `identity` (the identity itself unless changed).
    function identityOwner(address identity) public view returns (address) {
        address owner = _owners[identity];
        return owner == address(0) ? identity : owner;
    }

    /// @notice Hands control of `identity` to `newOwner`; only its current owner may call.
    function changeOwner(address identity, address newOwner) external {
        if (msg.sender != identityOwner(identity)) revert NotOwner(identity, msg.sender);
        _owners[identity] = newOwner;
        emit DIDOwnerChanged(identity, newOwner, 0);
    }
}
