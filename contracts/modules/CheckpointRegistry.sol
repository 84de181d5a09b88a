// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ICustodia} from "../ICustodia.sol";
import {Membership} from "./Membership.sol";

/**
 * @title CheckpointRegistry
 * @notice Anchors of append-only log checkpoints (tree size, Merkle root) by GATEWAY members.
 * @dev Per log one head word: owner address [0,160) | latest treeSize uint64 [160,224) | count
 * uint32 [224,256), and the history as logId => treeSize => root. The first gateway to anchor a
 * log owns it for good (there is no transfer; a deactivated owner freezes its logs).
 */
abstract contract CheckpointRegistry is Membership {
    uint256 private constant _SIZE_SHIFT = 160;
    uint256 private constant _COUNT_SHIFT = 224;

    mapping(bytes32 logId => uint256 head) private _heads;
    mapping(bytes32 logId => mapping(uint64 treeSize => bytes32 root)) private _roots;

    /// @inheritdoc ICustodia
    /// @dev Reverts {MembershipUnauthorized}(caller, GATEWAY) unless the caller is an active
    /// GATEWAY, {CheckpointInvalidRoot} for a zero root, {CheckpointLogOwned} when another gateway
    /// owns the log and {CheckpointNotIncreasing} unless treeSize > the latest (so a first anchor
    /// needs treeSize > 0). The event's index is the number of anchors of the log before this one.
    function anchorCheckpoint(bytes32 logId, uint64 treeSize, bytes32 root) external {
        _requireActive(Role.GATEWAY);
        if (root == bytes32(0)) revert CheckpointInvalidRoot();
        uint256 head = _heads[logId];
        address owner = address(uint160(head));
        if (owner != msg.sender && owner != address(0)) revert CheckpointLogOwned(logId, owner);
        uint64 latest = uint64(head >> _SIZE_SHIFT);
        if (treeSize <= latest) revert CheckpointNotIncreasing(logId, latest, treeSize);
        uint32 index = uint32(head >> _COUNT_SHIFT);
        uint32 count;
        unchecked {
            count = index + 1;
        }
        _heads[logId] =
            uint256(uint160(msg.sender)) |
            (uint256(treeSize) << _SIZE_SHIFT) |
            (uint256(count) << _COUNT_SHIFT);
        _roots[logId][treeSize] = root;
        emit CheckpointAnchored(logId, msg.sender, treeSize, root, index);
    }

    /// @notice Owner, latest tree size and number of anchors of `logId`; all zero if never anchored.
    function latestCheckpoint(bytes32 logId) external view returns (address gateway, uint64 treeSize, uint32 count) {
        uint256 head = _heads[logId];
        return (address(uint160(head)), uint64(head >> _SIZE_SHIFT), uint32(head >> _COUNT_SHIFT));
    }

    /// @inheritdoc ICustodia
    function checkpointRoot(bytes32 logId, uint64 treeSize) external view returns (bytes32 root) {
        return _roots[logId][treeSize];
    }
}
