// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/**
 * @title IERC1056
 * @notice The one function Custodia needs from an ERC-1056 (EthereumDIDRegistry) deployment.
 * @dev `identityOwner` returns the identity itself while its key was never rotated.
 */
interface IERC1056 {
    /// @notice The address currently controlling `identity`.
    function identityOwner(address identity) external view returns (address);
}
