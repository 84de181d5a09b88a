// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/**
 * @title ICustodia
 * @notice The Custodia consent ledger: membership, data-sharing agreements, subject-signed consent,
 * DID-based data commitments and erasure records, and anchored log checkpoints.
 * @dev Errors and events live here so adapters, tests and the chaincode share one definition.
 * Timestamps are unix seconds. Purposes are W3C DPV-aligned ids (0..31); categories are a uint16
 * bitmask; see core/domain.ts for both tables.
 */
interface ICustodia {
    enum Role {
        NONE,
        ADMIN,
        GATEWAY,
        PARTNER,
        AUDITOR
    }

    /// Reason codes returned by {checkPermission}; same order as PERMISSION_REASONS in core.
    enum PermissionReason {
        OK,
        PARTNER_NOT_MEMBER,
        PARTNER_INACTIVE,
        NOT_A_PARTNER,
        NO_AGREEMENT,
        NO_CONSENT,
        CONSENT_REVOKED,
        CONSENT_EXPIRED,
        CONSENT_CATEGORIES
    }

    struct Member {
        bytes32 didHash;
        bytes32 orgHash;
        Role role;
        bool active;
    }

    struct Agreement {
        address partner;
        uint32 purposes;
        uint16 categories;
        uint40 validFrom;
        uint40 validUntil;
        bool active;
        bytes32 termsHash;
    }

    /// The rule-bearing state of one consent, stored in a single packed slot.
    struct Consent {
        uint16 categories;
        uint40 expiresAt;
        uint40 grantedAt;
        uint40 revokedAt;
        uint32 nonce;
    }

    /// EIP-712: ConsentGrant(address subject,address partner,uint8 purpose,uint16 categories,uint64 expiresAt,bytes32 receiptHash,uint32 nonce,uint64 deadline)
    struct ConsentGrant {
        address subject;
        address partner;
        uint8 purpose;
        uint16 categories;
        uint64 expiresAt;
        bytes32 receiptHash;
        uint32 nonce;
        uint64 deadline;
    }

    /// EIP-712: ConsentRevoke(address subject,address partner,uint8 purpose,uint32 nonce,uint64 deadline)
    struct ConsentRevoke {
        address subject;
        address partner;
        uint8 purpose;
        uint32 nonce;
        uint64 deadline;
    }

    /// EIP-712: DataCommitment(address subject,bytes32 commitment,uint256 nonce,uint64 deadline)
    /// and ErasureRequest(address subject,bytes32 commitment,uint256 nonce,uint64 deadline).
    struct DataRequest {
        address subject;
        bytes32 commitment;
        uint256 nonce;
        uint64 deadline;
    }

    /* ----------------------------------------------------------- errors */

    error MembershipUnauthorized(address account, Role needed);
    error MembershipInvalidRole(Role role);
    error MembershipInvalidAccount(address account);
    error MembershipExists(address account);
    error MembershipUnknown(address account);
    error MembershipInactive(address account);

    error AgreementInvalid();
    error AgreementNotPartner(address partner);
    error AgreementUnknown(uint256 id);
    error AgreementAlreadyEnded(uint256 id);

    error ConsentInvalidPurpose(uint8 purpose);
    error ConsentInvalidCategories(uint16 categories);
    error ConsentInvalidPartner(address partner);
    error ConsentInvalidExpiry(uint64 expiresAt);
    error ConsentNotActive(address subject, address partner, uint8 purpose);

    error SignatureExpired(uint64 deadline);
    error ControllerNoRegistry();
    error SignatureInvalid(address subject, address recovered);
    error NonceInvalid(address subject, uint256 expected, uint256 given);

    error DataInvalidCommitment();
    error DataCommitmentExists(bytes32 commitment);
    error DataCommitmentUnknown(bytes32 commitment);
    error DataCommitmentErased(bytes32 commitment);
    error DataNotOwner(bytes32 commitment, address subject);

    error CheckpointNotIncreasing(bytes32 logId, uint64 latest, uint64 given);
    error CheckpointLogOwned(bytes32 logId, address owner);
    error CheckpointInvalidRoot();

    /* ----------------------------------------------------------- events */

    event MemberRegistered(address indexed account, Role indexed role, bytes32 didHash, bytes32 orgHash);
    event MemberDeactivated(address indexed account);
    event AgreementRegistered(
        uint256 indexed id,
        address indexed partner,
        uint32 purposes,
        uint16 categories,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 termsHash
    );
    event AgreementEnded(uint256 indexed id, address indexed partner);
    event ConsentGranted(
        address indexed subject,
        address indexed partner,
        uint8 indexed purpose,
        uint16 categories,
        uint64 expiresAt,
        bytes32 receiptHash,
        uint32 nonce
    );
    event ConsentRevoked(address indexed subject, address indexed partner, uint8 indexed purpose, uint32 nonce);
    event DataCommitted(address indexed subject, bytes32 indexed commitment);
    event DataErased(address indexed subject, bytes32 indexed commitment);
    event ControllerSynced(address indexed subject, address owner);
    event CheckpointAnchored(bytes32 indexed logId, address indexed gateway, uint64 treeSize, bytes32 root, uint32 index);

    /* -------------------------------------------------------- membership */

    /// @notice Registers `account` as an active member. Requires ADMIN. Emits {MemberRegistered}.
    function registerMember(address account, bytes32 didHash, Role role, bytes32 orgHash) external;

    /// @notice Deactivates a member; it keeps its history but loses every right. Requires ADMIN.
    /// Emits {MemberDeactivated}.
    function deactivateMember(address account) external;

    function member(address account) external view returns (Member memory);

    /* -------------------------------------------------------- agreements */

    /// @notice Registers a data-sharing agreement for an active PARTNER member. Requires ADMIN.
    /// Requires purposes != 0, categories != 0, validFrom < validUntil. Emits {AgreementRegistered}.
    /// @return id the new agreement id, starting at 1.
    function registerAgreement(
        address partner,
        uint32 purposes,
        uint16 categories,
        uint40 validFrom,
        uint40 validUntil,
        bytes32 termsHash
    ) external returns (uint256 id);

    /// @notice Ends an agreement early. Requires ADMIN. Emits {AgreementEnded}.
    function endAgreement(uint256 id) external;

    function agreement(uint256 id) external view returns (Agreement memory);

    function agreementsOf(address partner) external view returns (uint256[] memory);

    /* ------------------------------------------------------ key rotation */

    /// @notice Copies the ERC-1056 owner of `subject` into this contract (permissionless), so the
    /// rotated-to key signs for the subject and the old key no longer does. Emits {ControllerSynced}.
    function syncController(address subject) external;

    /// @notice The key whose signatures act for `subject`.
    function controllerOf(address subject) external view returns (address);

    /* ----------------------------------------------------------- consent */

    /// @notice Records a consent signed by the subject (EIP-712 ConsentGrant); any relayer may submit.
    /// Requires a valid signature by the subject (or its ERC-1056 owner), deadline not passed, the
    /// consent's current nonce, a known purpose, a non-empty known category mask, and an expiry in
    /// the future or 0. Emits {ConsentGranted}.
    function grantConsent(ConsentGrant calldata grant, bytes calldata signature) external;

    /// @notice The subject grants consent itself (msg.sender is the subject). Emits {ConsentGranted}.
    function grantConsentDirect(
        address partner,
        uint8 purpose,
        uint16 categories,
        uint64 expiresAt,
        bytes32 receiptHash
    ) external;

    /// @notice Withdraws a consent signed by the subject (EIP-712 ConsentRevoke); any relayer may
    /// submit. Effective from this block. Emits {ConsentRevoked}.
    function revokeConsent(ConsentRevoke calldata revoke, bytes calldata signature) external;

    /// @notice The subject withdraws consent itself. Emits {ConsentRevoked}.
    function revokeConsentDirect(address partner, uint8 purpose) external;

    function consent(address subject, address partner, uint8 purpose) external view returns (Consent memory);

    /// @notice Is `partner` permitted `purpose` over `categories` of `subject` at time `at`, given the
    /// current membership, agreements and consent? Evaluate at a past block for the state then.
    function checkPermission(
        address subject,
        address partner,
        uint8 purpose,
        uint16 categories,
        uint64 at
    ) external view returns (bool allowed, PermissionReason reason, uint256 agreementId);

    /* ---------------------------------------------------------- data */

    /// @notice Records a subject-signed salted commitment to a record held off-chain.
    /// Emits {DataCommitted}.
    function commitData(DataRequest calldata request, bytes calldata signature) external;

    function commitDataDirect(bytes32 commitment) external;

    /// @notice Records that the subject's off-chain record was erased (crypto-shredded).
    /// Emits {DataErased}.
    function recordErasure(DataRequest calldata request, bytes calldata signature) external;

    function recordErasureDirect(bytes32 commitment) external;

    function commitmentOf(bytes32 commitment) external view returns (address subject, uint40 committedAt, uint40 erasedAt);

    function dataNonce(address subject) external view returns (uint256);

    /* ------------------------------------------------------- checkpoints */

    /// @notice Anchors a log checkpoint. Requires an active GATEWAY; the first gateway to anchor a
    /// log owns it; treeSize strictly increases per log. Emits {CheckpointAnchored}.
    function anchorCheckpoint(bytes32 logId, uint64 treeSize, bytes32 root) external;

    function latestCheckpoint(bytes32 logId) external view returns (address gateway, uint64 treeSize, uint32 count);

    /// @return root the root anchored for `logId` at exactly `treeSize`, or 0 if none was.
    function checkpointRoot(bytes32 logId, uint64 treeSize) external view returns (bytes32 root);
}
