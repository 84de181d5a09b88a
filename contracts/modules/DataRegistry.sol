// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ICustodia} from "../ICustodia.sol";
import {SignatureAuth} from "./SignatureAuth.sol";

/**
 * @title DataRegistry
 * @notice Subject-owned salted commitments to records held off-chain, and the record of their
 * erasure (crypto-shredding). A commitment is recorded once, ever; erasing it keeps the entry.
 * @dev One word per commitment: subject address [0,160) | committedAt uint40 [160,200) |
 * erasedAt uint40 [200,240). Signed requests share one per-subject nonce counter
 * ({dataNonce}); the direct variants authenticate by msg.sender and leave the counter alone.
 */
abstract contract DataRegistry is SignatureAuth {
    bytes32 private constant _COMMIT_TYPEHASH =
        keccak256("DataCommitment(address subject,bytes32 commitment,uint256 nonce,uint64 deadline)");
    bytes32 private constant _ERASURE_TYPEHASH =
        keccak256("ErasureRequest(address subject,bytes32 commitment,uint256 nonce,uint64 deadline)");

    uint256 private constant _COMMITTED_SHIFT = 160;
    uint256 private constant _ERASED_SHIFT = 200;

    mapping(bytes32 commitment => uint256 word) private _commitments;
    mapping(address subject => uint256 nonce) private _dataNonces;

    /// @inheritdoc ICustodia
    /// @dev Checks, in order: deadline ({SignatureExpired}), signature over EIP-712 DataCommitment
    /// ({SignatureInvalid}), commitment != 0 ({DataInvalidCommitment}), nonce == dataNonce(subject)
    /// ({NonceInvalid}), commitment never recorded ({DataCommitmentExists}). Increments the
    /// subject's data nonce.
    function commitData(DataRequest calldata request, bytes calldata signature) external {
        address subject = _consumeSigned(request, _COMMIT_TYPEHASH, signature);
        _commit(subject, request.commitment);
    }

    /// @notice The caller records a commitment to its own off-chain record. Emits {DataCommitted}.
    /// @dev Reverts {DataInvalidCommitment} for 0 and {DataCommitmentExists} if ever recorded.
    /// Does not touch the data nonce.
    function commitDataDirect(bytes32 commitment) external {
        if (commitment == bytes32(0)) revert DataInvalidCommitment();
        _requireSelfControlled(msg.sender);
        _commit(msg.sender, commitment);
    }

    /// @inheritdoc ICustodia
    /// @dev Checks, in order: deadline, signature over EIP-712 ErasureRequest, commitment != 0,
    /// nonce, then {DataCommitmentUnknown}, {DataNotOwner}(commitment, request.subject) and
    /// {DataCommitmentErased}. Increments the subject's data nonce.
    function recordErasure(DataRequest calldata request, bytes calldata signature) external {
        address subject = _consumeSigned(request, _ERASURE_TYPEHASH, signature);
        _erase(subject, request.commitment);
    }

    /// @notice The caller records that its own off-chain record was erased. Emits {DataErased}.
    /// @dev Reverts {DataInvalidCommitment}, {DataCommitmentUnknown}, {DataNotOwner} or
    /// {DataCommitmentErased}. Does not touch the data nonce.
    function recordErasureDirect(bytes32 commitment) external {
        if (commitment == bytes32(0)) revert DataInvalidCommitment();
        _requireSelfControlled(msg.sender);
        _erase(msg.sender, commitment);
    }

    /// @notice Owner and times of a commitment; all zero when it was never recorded, erasedAt 0
    /// while not erased.
    function commitmentOf(
        bytes32 commitment
    ) external view returns (address subject, uint40 committedAt, uint40 erasedAt) {
        uint256 word = _commitments[commitment];
        return (address(uint160(word)), uint40(word >> _COMMITTED_SHIFT), uint40(word >> _ERASED_SHIFT));
    }

    /// @notice The nonce the next signed DataCommitment or ErasureRequest of `subject` must carry.
    function dataNonce(address subject) external view returns (uint256) {
        return _dataNonces[subject];
    }

    /// @dev Deadline, signature, commitment and nonce checks of a signed request, in that order;
    /// consumes the nonce (the whole call reverts if a later check fails) and returns the subject.
    function _consumeSigned(
        DataRequest calldata request,
        bytes32 typehash,
        bytes calldata signature
    ) private returns (address subject) {
        _requireNotExpired(request.deadline);
        subject = request.subject;
        _requireSignedBy(subject, keccak256(abi.encode(typehash, request)), signature);
        if (request.commitment == bytes32(0)) revert DataInvalidCommitment();
        uint256 nonce = _dataNonces[subject];
        if (request.nonce != nonce) revert NonceInvalid(subject, nonce, request.nonce);
        unchecked {
            _dataNonces[subject] = nonce + 1;
        }
    }

    function _commit(address subject, bytes32 commitment) private {
        if (_commitments[commitment] != 0) revert DataCommitmentExists(commitment);
        _commitments[commitment] = uint256(uint160(subject)) | (block.timestamp << _COMMITTED_SHIFT);
        emit DataCommitted(subject, commitment);
    }

    function _erase(address subject, bytes32 commitment) private {
        uint256 word = _commitments[commitment];
        if (word == 0) revert DataCommitmentUnknown(commitment);
        if (address(uint160(word)) != subject) revert DataNotOwner(commitment, subject);
        if (uint40(word >> _ERASED_SHIFT) != 0) revert DataCommitmentErased(commitment);
        _commitments[commitment] = word | (block.timestamp << _ERASED_SHIFT);
        emit DataErased(subject, commitment);
    }
}
