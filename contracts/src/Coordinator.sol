// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Bls12381} from "./Bls12381.sol";
import {Bls12381Verifier} from "./Bls12381Verifier.sol";
import {EncodingReader} from "./EncodingReader.sol";

/// @title The keyquorum view-change coordinator on an EVM chain.
/// @notice The rules of `keyquorum-contract` where an EVM chain can hold them, with the
/// BLS12-381 checks on the EIP-2537 precompiles (hash-to-curve and the pairing checks in a
/// `Bls12381Verifier` the constructor creates, so this contract's code fixes the verifier it
/// trusts):
/// - registration: the identity key (compressed G2) with its proof of possession and a
///   signature binding the key to the sending account, the share-encryption key and the
///   network identity, all verified here; stake is the native currency sent, unbonded stake is
///   withdrawn after `unbondingBlocks`;
/// - committee selection: anyone starts it; the contract ranks the eligible nodes from its own
///   state (stake descending, then the tie-break hash under the previous view's seed) and takes
///   the top `n`, keeping up to `keepPreviousPercent` of the seats for members of the active
///   view; `t` and `k` are percentages of `n`. At most `MAX_CANDIDATES` nodes are eligible at
///   once, so the ranking fits in a block: when the list is full a newcomer evicts the
///   candidate ranked last among those not serving (in the active view or the running
///   ceremony) if its stake is higher, and is refused if not (`_enter`). The
///   session id is computed here as the DKG computes it, its domain naming the chain
///   (`block.chainid`), this contract and the configured chain name, so the ceremony's posts
///   are bound to the committee of this deployment;
/// - phases by block number: contribute, share, publish, wait;
/// - posts: a dealer's signed board post (a committee member's, or in a reshare an active view
///   member's at its dealer position), once per dealer and phase, its bytes in
///   calldata and in the `PostAccepted` event, its hash in storage; the board outcome is
///   computed off chain, by every node, with the Rust board code, from the event log;
/// - key modes (`keyMode`): 1 makes every view a fresh key; 2 makes view 1 fresh and reshares
///   its key in every later view: the active view's members, in their magic block's order,
///   deal shares of their shares to the new committee, and the group key stays. What a
///   reshare binds of the previous view (group key, threshold, each member's keys, index and
///   public key share) enters its session id as one digest
///   (`keyquorum_dkg::ceremony::reshare_digest`), computed here when that view activates;
/// - activation: the magic block (the bytes `keyquorum-contract` encodes) takes effect when the
///   new committee's threshold signature verifies under its group key, that key is the sum of
///   the named qualified dealers' contributions on chain (fresh) or the active group key
///   (reshare, with at least the active threshold of qualified dealers), and, after the first
///   view, the previous committee's handover signature verifies under the previous group key;
/// - fraud proofs: two different contributions signed by one dealer of a ceremony
///   (equivocation), a publication on chain whose ack aggregate does not verify under the
///   named ackers' keys, or one that reveals a share its contribution contradicts, slash the
///   dealer, paying the reporter a share and burning the rest.
/// Not here: the board's publish retries (one attempt), early phase close, absence penalties
/// (absence is what the board sees), and fraud proofs of commitments of too high a degree.
contract Coordinator {
    // ---------------------------------------------------------------- constants

    bytes internal constant NEW_COMMITTEE_TAG = "keyquorum/magic-block-signature/new-committee/v1";
    bytes internal constant HANDOVER_TAG = "keyquorum/magic-block-signature/handover/v1";
    bytes internal constant REGISTER_TAG = "keyquorum-evm/register/v1";
    uint8 internal constant KEY_MODE_FRESH = 1;
    uint8 internal constant KEY_MODE_RESHARE = 2;
    uint8 internal constant POST_CONTRIBUTION = 1;
    uint8 internal constant POST_PUBLICATION = 2;
    uint8 internal constant SIGNED_CONTRIBUTION = 0x81;
    uint256 internal constant SIGNATURE_LEN = 48;
    uint8 internal constant PREVIOUS = 1;
    uint8 internal constant BANNED = 2;
    uint256 internal constant MAX_PEER_ID_LEN = 128;
    uint256 internal constant MAX_ADDRESSES = 8;
    uint256 internal constant MAX_ADDRESS_LEN = 256;
    /// Most seats (`maxSize`) and most eligible nodes at once. The selection stores each seat
    /// (about 68,000 gas: the committee list, the position, the session id's input), reads
    /// each candidate's stake and key (about 16,500 gas of cold storage and the heap) and, after
    /// a failed ceremony, bans each silent member (a new slot, 22,100): at these bounds its
    /// worst case stays near 25M gas, within a 30M block (`tests/gas.rs`). A registration that
    /// evicts reads every candidate's stake and, where tied with the lowest so far, whether it
    /// serves and its key for the tie-break: about 4.1M gas with all of them tied.
    uint256 internal constant MAX_COMMITTEE = 256;
    uint256 internal constant MAX_CANDIDATES = 300;
    /// `releaseBlock` after a step down while the stake was locked (it covers the whole
    /// unbonding amount): the clock starts at the first `withdraw` after the lock ends.
    uint64 internal constant UNBONDING_PENDING = type(uint64).max;

    // ---------------------------------------------------------------- types

    struct Config {
        bytes chainId;
        uint32 maxSize;
        uint32 minSize;
        uint8 thresholdPercent;
        uint8 quorumPercent;
        uint8 keepPreviousPercent;
        uint256 minStake;
        uint64 contributeBlocks;
        uint64 shareBlocks;
        uint64 publishBlocks;
        uint64 waitBlocks;
        uint64 firstViewChange;
        uint64 viewLength;
        uint64 unbondingBlocks;
        uint8 misbehaviourPercent;
        uint8 reporterPercent;
        /// The random beacon every view runs, as its magic block names it: the scheme's tag
        /// (1 `pedersen-bls-chained`, 2 `pedersen-bls-unchained`) and seconds between rounds.
        uint8 beaconScheme;
        uint32 beaconPeriod;
        /// `KEY_MODE_FRESH`: every view a fresh key; `KEY_MODE_RESHARE`: the key of view 1
        /// reshared in every later view.
        uint8 keyMode;
    }

    struct Node {
        bytes32[3] identity;
        bytes32 identityPointHash;
        bytes32 encryptionKey;
        uint256 stake;
        uint256 unbonding;
        uint64 releaseBlock;
        uint64 memberOfView;
        /// 1 + the node's place in `candidates`, 0 while it is not eligible.
        uint32 candidateSlot;
    }

    struct Ceremony {
        uint64 viewNumber;
        uint32 number;
        uint32 n;
        uint32 t;
        uint32 k;
        uint64 contributeEnd;
        uint64 shareEnd;
        uint64 publishEnd;
        uint64 waitEnd;
        bytes32 sessionId;
        /// Whether the active view's members deal (a reshare) rather than the committee.
        bool reshare;
        address[] committee;
    }

    struct Activation {
        bytes magicBlock;
        bytes groupKeyPoint;
        uint32[] qualified;
        bytes signature;
        bytes signaturePoint;
        bytes previousSignaturePoint;
        bytes endorsers;
        bytes[] endorserPoints;
        bytes endorsement;
    }

    // ---------------------------------------------------------------- state

    Config internal config;
    /// The BLS signature checks (hash-to-curve and pairings), a separate stateless contract
    /// that the constructor creates: a verifier named by the deployer could answer anything.
    Bls12381Verifier public immutable bls;
    /// The decoding of magic blocks and publications, likewise a stateless contract the
    /// constructor creates.
    EncodingReader public immutable reader;
    mapping(address => Node) internal nodes;
    mapping(bytes32 => address) internal identityOwner;
    /// The eligible nodes (stake at least the minimum), in no order.
    address[] internal candidates;

    uint256 internal ceremonyCount;
    mapping(uint256 => Ceremony) internal ceremonies;
    mapping(uint256 => mapping(address => uint256)) internal positions;
    mapping(uint256 => mapping(uint256 => bytes32)) internal contributionHash;
    mapping(uint256 => mapping(uint256 => bytes32[3])) internal contributionConstant;
    mapping(uint256 => mapping(uint256 => bytes32)) internal publicationHash;
    /// ceremony => the players any accepted publication of a reshare names as acking (bit i:
    /// seat i): all the contract sees of a reshare's players, who post nothing.
    mapping(uint256 => uint256) internal acked;
    mapping(uint256 => mapping(address => bool)) internal slashedIn;
    /// ban series => node => sits out the rest of that series of ceremonies (absent from a
    /// failed one of it). A series is a view change, or what is left of one after it was
    /// abandoned (`ViewChangeAbandoned`).
    mapping(uint256 => mapping(address => bool)) internal bannedIn;
    uint256 internal banSeries;
    /// view number => its magic block's members in the block's order: the dealers, by
    /// position, of the ceremonies that reshare that view's key (kept when `keyMode` reshares).
    mapping(uint64 => address[]) internal viewMembers;
    /// `keyquorum_dkg::ceremony::reshare_digest` of the active view, and its threshold.
    bytes32 internal reshareDigest;
    uint32 internal activeThreshold;

    uint256 public running;
    uint64 public currentView;
    uint64 public nextStart;
    uint32 internal nextCeremonyNumber;
    bytes32 public magicBlockHash;
    bytes32 public seed;
    bytes internal groupKeyPoint;
    uint256 public burned;

    // ---------------------------------------------------------------- events

    event Registered(
        address indexed account,
        bytes identity,
        bytes32 encryptionKey,
        bytes peerId,
        string[] addresses,
        uint256 stake
    );
    /// `account` left the full candidate list for `by`, whose stake is higher than its `stake`.
    event Evicted(address indexed account, address indexed by, uint256 stake);
    event StakeAdded(address indexed account, uint256 amount, uint256 stake);
    event Unbonding(address indexed account, uint256 amount, uint64 releaseBlock);
    event Withdrawn(address indexed account, uint256 amount);
    event CommitteeSelected(
        uint256 indexed ceremony,
        uint64 viewNumber,
        uint32 number,
        uint8 keyMode,
        bytes32 sessionId,
        uint32 n,
        uint32 t,
        uint32 k,
        address[] committee,
        uint64 contributeEnd,
        uint64 shareEnd,
        uint64 publishEnd,
        uint64 waitEnd
    );
    event PostAccepted(uint256 indexed ceremony, uint32 indexed dealer, uint8 kind, bytes post);
    /// A restart of view change `viewNumber` was left, after its bans, with `have` of the
    /// `needed` dealers of a reshare (`reason` 1) or candidates for the committee (`reason` 2):
    /// the view change is abandoned with its bans, to start over, nobody banned, from block
    /// `nextStart` on.
    event ViewChangeAbandoned(uint64 indexed viewNumber, uint8 reason, uint256 have, uint256 needed, uint64 nextStart);
    event ViewActivated(uint64 indexed viewNumber, uint256 indexed ceremony, bytes32 magicBlockHash, bytes magicBlock);
    event Slashed(
        address indexed culprit,
        uint256 indexed ceremony,
        string fault,
        uint256 amount,
        address reporter,
        uint256 reward,
        uint256 burned
    );

    // ---------------------------------------------------------------- errors

    error BadConfig(string what);
    error AlreadyRegistered();
    error IdentityTaken();
    error BadIdentityKey();
    error BadProofOfPossession();
    error BadRegistrationSignature();
    error NetworkIdentityTooLong();
    error NotRegistered();
    error StakeLocked();
    error InsufficientStake();
    error NothingToWithdraw();
    error StillUnbonding(uint64 releaseBlock);
    error TransferFailed();
    error TooEarly(uint64 nextStart);
    error ViewChangeRunning(uint256 ceremony);
    error CandidateListFull(uint256 lowestStake);
    error TooFewCandidates(uint256 have, uint256 need);
    error BadParams(uint32 n, uint32 t, uint32 k);
    error NoViewChange();
    error NotMember();
    error WrongPhase();
    error MalformedPost();
    error WrongSession();
    error WrongDealer();
    error AlreadyPosted();
    error NoContribution();
    error MalformedMagicBlock(string what);
    error BadMagicBlock(string what);
    error BadQualifiedSet();
    error GroupKeyMismatch();
    /// The new committee's signature on the magic block does not verify under its group key.
    error BadCommitteeSignature();
    /// The previous committee's handover signature does not verify under the previous key.
    error BadHandoverSignature();
    /// Fewer than `t` endorsers.
    error TooFewEndorsers();
    /// The endorsers' aggregate does not verify on the block's hash.
    error BadEndorsement();
    /// A post's signature in a fraud proof is not its author's.
    error BadPostSignature();
    /// The aggregate point given with a proof is not the publication's aggregate.
    error BadAggregatePoint();
    error NotEquivocation();
    error AlreadySlashed();
    error NoPublication();
    error NotAFault();

    // ---------------------------------------------------------------- setup

    constructor(Config memory c) {
        if (c.chainId.length == 0 || c.chainId.length > 64) revert BadConfig("chain id");
        if (c.minSize == 0 || c.minSize > c.maxSize || c.maxSize > MAX_COMMITTEE) revert BadConfig("committee size");
        if (c.thresholdPercent == 0 || c.thresholdPercent > 100 || c.quorumPercent == 0 || c.quorumPercent > 100) {
            revert BadConfig("thresholds");
        }
        if (c.keepPreviousPercent > 100 || c.misbehaviourPercent > 100 || c.reporterPercent > 100) {
            revert BadConfig("percent");
        }
        if (c.contributeBlocks == 0 || c.shareBlocks == 0 || c.publishBlocks == 0 || c.waitBlocks == 0) {
            revert BadConfig("phase length");
        }
        if (c.viewLength == 0) revert BadConfig("view length");
        if (c.keyMode != KEY_MODE_FRESH && c.keyMode != KEY_MODE_RESHARE) revert BadConfig("key mode");
        if (c.beaconScheme == 0 || c.beaconScheme > 2 || c.beaconPeriod == 0 || c.beaconPeriod > 3600) {
            revert BadConfig("beacon");
        }
        // Every committee size the selection may seat must give valid parameters: a size that
        // does not would make every view change that seats it revert, and the configuration
        // cannot change after deployment.
        for (uint32 n = c.minSize; n <= c.maxSize; n++) {
            if (_badParams(n, _percentOf(n, c.thresholdPercent), _percentOf(n, c.quorumPercent))) {
                revert BadConfig("thresholds");
            }
        }
        config = c;
        bls = new Bls12381Verifier();
        reader = new EncodingReader();
        nextStart = c.firstViewChange;
    }

    // ---------------------------------------------------------------- registry

    /// The payload an identity key signs (purpose `Transaction`) to bind itself to `account`
    /// on this chain and contract, with its share-encryption key and network identity
    /// (`keyquorum_evm::registration_payload`).
    function _registrationPayload(address account, bytes32 encryptionKey, bytes calldata peerId, string[] calldata addresses)
        internal
        view
        returns (bytes memory)
    {
        return abi.encodePacked(
            REGISTER_TAG, block.chainid, address(this), account, encryptionKey, keccak256(abi.encode(peerId, addresses))
        );
    }

    /// Registers the sender: `identity` is the compressed G2 key, `identityPoint` the same
    /// point in the precompile encoding, `pop` the proof of possession and `binding` the
    /// signature on the registration payload (both G1 points, precompile encoding).
    function register(
        bytes calldata identity,
        bytes calldata identityPoint,
        bytes calldata pop,
        bytes calldata binding,
        bytes32 encryptionKey,
        bytes calldata peerId,
        string[] calldata addresses
    ) external payable {
        Node storage node = nodes[msg.sender];
        if (node.identityPointHash != 0) revert AlreadyRegistered();
        bytes32 idHash = keccak256(identity);
        if (identityOwner[idHash] != address(0)) revert IdentityTaken();
        if (peerId.length > MAX_PEER_ID_LEN || addresses.length > MAX_ADDRESSES) revert NetworkIdentityTooLong();
        for (uint256 i = 0; i < addresses.length; i++) {
            if (bytes(addresses[i]).length > MAX_ADDRESS_LEN) revert NetworkIdentityTooLong();
        }
        if (!Bls12381.matchesCompressedG2(identity, identityPoint)) revert BadIdentityKey();
        if (!bls.verifyProofOfPossession(identityPoint, identity, pop)) revert BadProofOfPossession();
        bytes32 digest = taggedHash("keyquorum/tx/v1", _registrationPayload(msg.sender, encryptionKey, peerId, addresses));
        if (!bls.verifyIdentitySignature(identityPoint, abi.encodePacked(digest), binding)) {
            revert BadRegistrationSignature();
        }
        identityOwner[idHash] = msg.sender;
        node.identity = [bytes32(identity[0:32]), bytes32(identity[32:64]), bytes32(identity[64:96])];
        node.identityPointHash = keccak256(identityPoint);
        node.encryptionKey = encryptionKey;
        node.stake = msg.value;
        _enter(msg.sender, node);
        emit Registered(msg.sender, identity, encryptionKey, peerId, addresses, msg.value);
    }

    function addStake() external payable {
        Node storage node = _node(msg.sender);
        node.stake += msg.value;
        _enter(msg.sender, node);
        emit StakeAdded(msg.sender, msg.value, node.stake);
    }

    /// Takes `amount` out of committee selection at once; the whole unbonding amount can be
    /// withdrawn `unbondingBlocks` after the last unbond. A member of the active view or of the
    /// view change in progress (`isLocked`) may only step down: unbond below the minimum stake
    /// (`StakeLocked` otherwise), so that one the selection keeps choosing can leave. It is
    /// not selected again but keeps serving, the unbonding stays slashable, and its release is
    /// `UNBONDING_PENDING` until a `withdraw` after the service ends starts the clock.
    function unbond(uint256 amount) external {
        Node storage node = _node(msg.sender);
        if (amount == 0 || amount > node.stake) revert InsufficientStake();
        bool locked = isLocked(msg.sender);
        if (locked && _eligible(node.stake - amount)) revert StakeLocked();
        _lowerStake(node, node.stake - amount);
        node.unbonding += amount;
        node.releaseBlock = locked ? UNBONDING_PENDING : uint64(block.number) + config.unbondingBlocks;
        emit Unbonding(msg.sender, amount, node.releaseBlock);
    }

    /// Pays out the unbonded stake once its release block has passed. For an amount unbonded
    /// while serving, the first call after the service ends starts the clock instead (a
    /// fraud proof then has the full `unbondingBlocks` after the member's last post); while
    /// it serves, that call is refused (`StakeLocked`).
    function withdraw() external {
        Node storage node = _node(msg.sender);
        uint256 amount = node.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (node.releaseBlock == UNBONDING_PENDING) {
            if (isLocked(msg.sender)) revert StakeLocked();
            node.releaseBlock = uint64(block.number) + config.unbondingBlocks;
            emit Unbonding(msg.sender, 0, node.releaseBlock);
            return;
        }
        if (block.number < node.releaseBlock) revert StillUnbonding(node.releaseBlock);
        node.unbonding = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    function isLocked(address account) public view returns (bool) {
        if (currentView != 0 && nodes[account].memberOfView == currentView) return true;
        uint256 c = running;
        return c != 0 && positions[c][account] != 0 && block.number <= ceremonies[c].waitEnd;
    }

    function _node(address account) internal view returns (Node storage node) {
        node = nodes[account];
        if (node.identityPointHash == 0) revert NotRegistered();
    }

    function eligibleCount() external view returns (uint256) {
        return candidates.length;
    }

    /// Whether `account` is on the candidate list (`listed`: the selection ranks it) and whether
    /// its stake is eligible. A node with an eligible stake that is not listed was evicted
    /// (`_enter`); its node reads this to confirm an `Evicted` log before it tries to re-enter.
    function candidacy(address account) external view returns (bool listed, bool eligible) {
        Node storage node = nodes[account];
        return (node.candidateSlot != 0, _eligible(node.stake));
    }

    function _eligible(uint256 stake) internal view returns (bool) {
        return stake >= config.minStake && stake > 0;
    }

    /// Lowers a stake; a candidate whose stake falls below the minimum leaves `candidates`.
    function _lowerStake(Node storage node, uint256 stake) internal {
        node.stake = stake;
        uint256 slot = node.candidateSlot;
        if (slot != 0 && !_eligible(stake)) {
            address last = candidates[candidates.length - 1];
            candidates[slot - 1] = last;
            nodes[last].candidateSlot = uint32(slot);
            candidates.pop();
            node.candidateSlot = 0;
        }
    }

    /// Makes a node with an eligible stake a candidate, if it is not one. With `MAX_CANDIDATES`
    /// candidates it takes the place of the lowest-ranked evictable one (`_lowestEvictable`) if
    /// its stake is higher, and is refused (`CandidateListFull`, naming that stake, or 0 when
    /// none is evictable) if not: a list filled with minimum stakes does not keep a higher
    /// stake out. The evicted node stays registered with its stake, which it unbonds and
    /// withdraws as any stake; `addStake` makes it a candidate again, on the same terms.
    function _enter(address account, Node storage node) internal {
        if (node.candidateSlot != 0 || !_eligible(node.stake)) return;
        uint256 slot = candidates.length;
        if (slot < MAX_CANDIDATES) {
            candidates.push(account);
        } else {
            bool found;
            (found, slot) = _lowestEvictable();
            address lowest = candidates[slot];
            uint256 lowestStake = found ? nodes[lowest].stake : 0;
            if (!found || node.stake <= lowestStake) revert CandidateListFull(lowestStake);
            nodes[lowest].candidateSlot = 0;
            candidates[slot] = account;
            emit Evicted(lowest, account, lowestStake);
        }
        node.candidateSlot = uint32(slot + 1);
    }

    /// The place in `candidates` of the candidate the selection ranks last (the least stake,
    /// then the greatest tie-break under the current seed; distinct identities give distinct
    /// tie-breaks, so exactly one) among those that may be evicted: not a member of the active
    /// view, whose seats `keepPreviousPercent` reserves, nor of the running ceremony, which needs
    /// its committee until it ends: the nodes whose stake `isLocked`. `found` is false when
    /// every candidate is one of those.
    function _lowestEvictable() internal view returns (bool found, uint256 lowest) {
        bytes32 s = currentSeed();
        uint256 lowestStake = type(uint256).max;
        bytes32 lowestTie;
        for (uint256 i = 0; i < candidates.length; i++) {
            address a = candidates[i];
            Node storage node = nodes[a];
            uint256 stake = node.stake;
            // Serving is what locks a stake (`isLocked`): one rule for both.
            if (stake > lowestStake || isLocked(a)) continue;
            bytes32 tie = tiebreak(s, node.identity);
            if (!found || stake < lowestStake || tie > lowestTie) {
                (found, lowest, lowestStake, lowestTie) = (true, i, stake, tie);
            }
        }
    }

    // ---------------------------------------------------------------- committee selection

    /// The tie-break key of an identity under a seed, as `keyquorum_contract::select`.
    function tiebreak(bytes32 s, bytes32[3] storage id) internal view returns (bytes32) {
        return sha256(abi.encodePacked("keyquorum/committee-tiebreak/v1", s, id[0], id[1], id[2]));
    }

    function currentSeed() public view returns (bytes32) {
        if (currentView == 0) return sha256(abi.encodePacked("keyquorum/genesis-seed/v1", config.chainId));
        return seed;
    }

    /// Starts the view change (or, when the running ceremony's wait phase passed without an
    /// activation, its next ceremony). The committee is ranked here from the contract's own
    /// state, so a stake change or registration landing just before this call changes whom it
    /// selects, never whether it succeeds.
    function startViewChange() external {
        uint64 viewNumber;
        bool retry = running != 0;
        bool reshare = config.keyMode == KEY_MODE_RESHARE && currentView != 0;
        if (retry) {
            Ceremony storage r = ceremonies[running];
            if (block.number <= r.waitEnd) revert ViewChangeRunning(running);
            viewNumber = r.viewNumber;
            // A reshare's players post nothing: those no publication names as acking sit out
            // the rest of this ban series, unless no publication names anyone (then nothing
            // was seen of them). First, so that a dealer banned here is not counted below.
            uint256 seen = acked[running];
            if (r.reshare && seen != 0) {
                for (uint256 i = 0; i < r.n; i++) {
                    if ((seen >> i) & 1 == 0) bannedIn[banSeries][r.committee[i]] = true;
                }
            }
            // The failed ceremony's dealers that did not post both their contribution and
            // their publication sit out the rest of this ban series, as the Rust contract bans
            // a failed ceremony's culprits: otherwise the same silent minority is chosen again.
            // A reshare's dealers are the active view's members; a banned one deals no more.
            address[] storage dealers = r.reshare ? viewMembers[currentView] : r.committee;
            uint256 dealing;
            for (uint256 i = 0; i < dealers.length; i++) {
                address d = dealers[i];
                if (bannedIn[banSeries][d]) continue;
                if (contributionHash[running][i] == 0 || publicationHash[running][i] == 0) {
                    bannedIn[banSeries][d] = true;
                } else {
                    dealing++;
                }
            }
            // Too few dealers left to reshare the key: rather than stall on bans that may
            // outlast the absences behind them, start over later with every member dealing, as
            // the Rust contract retries an aborted view change. The active view serves on.
            if (reshare && dealing < activeThreshold) return _abandon(viewNumber, 1, dealing, activeThreshold);
        } else {
            if (block.number < nextStart) revert TooEarly(nextStart);
            viewNumber = currentView + 1;
            banSeries++;
        }
        address[] memory committee = _select(retry);
        uint32 n = uint32(committee.length);
        if (n < config.minSize) {
            // After bans, too few candidates: reverting would leave the bans in place for good.
            if (retry) return _abandon(viewNumber, 2, n, config.minSize);
            revert TooFewCandidates(n, config.minSize);
        }
        uint32 t = _percentOf(n, config.thresholdPercent);
        uint32 k = _percentOf(n, config.quorumPercent);
        if (_badParams(n, t, k)) revert BadParams(n, t, k);

        uint256 id = ++ceremonyCount;
        Ceremony storage c = ceremonies[id];
        c.viewNumber = viewNumber;
        c.number = nextCeremonyNumber++;
        c.n = n;
        c.t = t;
        c.k = k;
        c.contributeEnd = uint64(block.number) + config.contributeBlocks;
        c.shareEnd = c.contributeEnd + config.shareBlocks;
        c.publishEnd = c.shareEnd + config.publishBlocks;
        c.waitEnd = c.publishEnd + config.waitBlocks;
        c.committee = committee;
        c.reshare = reshare;
        for (uint256 i = 0; i < n; i++) {
            positions[id][committee[i]] = i + 1;
        }
        c.sessionId = _sessionId(c, committee);
        running = id;
        emit CommitteeSelected(
            id,
            viewNumber,
            c.number,
            reshare ? KEY_MODE_RESHARE : KEY_MODE_FRESH,
            c.sessionId,
            n,
            t,
            k,
            committee,
            c.contributeEnd,
            c.shareEnd,
            c.publishEnd,
            c.waitEnd
        );
    }

    /// Abandons the running view change `viewNumber` with its bans (`ViewChangeAbandoned`): it
    /// starts over, nobody banned, a wait phase's length from now.
    function _abandon(uint64 viewNumber, uint8 reason, uint256 have, uint256 needed) internal {
        running = 0;
        banSeries++;
        nextStart = uint64(block.number) + config.waitBlocks;
        emit ViewChangeAbandoned(viewNumber, reason, have, needed, nextStart);
    }

    /// The committee of `keyquorum_contract::select`: the candidates not sitting out the current
    /// ban series, ranked by stake descending, then tie-break ascending (distinct identities give
    /// distinct tie-breaks, so the order is total); up to `keepPreviousPercent` of the seats to
    /// members of the active view, best ranked first, the rest to the best ranked of everyone
    /// else; listed in rank order (which fixes the share indices). A heap yields the candidates
    /// best first, so only as many are ordered as the seats take.
    function _select(bool retry) internal view returns (address[] memory out) {
        uint256 m = candidates.length;
        uint256[] memory stakes = new uint256[](m);
        bytes32[] memory ties = new bytes32[](m);
        bool[] memory previous = new bool[](m);
        // Indices into `candidates`.
        uint256[] memory heap = new uint256[](m);
        bytes32 s = currentSeed();
        uint64 active = currentView;
        uint256 open;
        uint256 previousCount;
        for (uint256 i = 0; i < m; i++) {
            address a = candidates[i];
            // Only a failed ceremony of this ban series bans anyone.
            if (retry && bannedIn[banSeries][a]) continue;
            Node storage node = nodes[a];
            stakes[i] = node.stake;
            ties[i] = tiebreak(s, node.identity);
            if (active != 0 && node.memberOfView == active) {
                previous[i] = true;
                previousCount++;
            }
            heap[open++] = i;
        }
        uint256 n = open < config.maxSize ? open : config.maxSize;
        uint256 reserved = n * config.keepPreviousPercent / 100;
        if (reserved > previousCount) reserved = previousCount;
        for (uint256 i = open / 2; i > 0; i--) {
            _siftDown(heap, i - 1, open, stakes, ties);
        }
        out = new address[](n);
        uint256 taken;
        uint256 previousTaken;
        while (taken < n) {
            uint256 best = heap[0];
            heap[0] = heap[--open];
            _siftDown(heap, 0, open, stakes, ties);
            if (previous[best] && previousTaken < reserved) previousTaken++;
            else if (taken - previousTaken == n - reserved) continue;
            out[taken++] = candidates[best];
        }
    }

    /// Restores the heap order (best on top) below position `i` of `heap[0:len]`.
    function _siftDown(uint256[] memory heap, uint256 i, uint256 len, uint256[] memory stakes, bytes32[] memory ties)
        internal
        pure
    {
        while (true) {
            uint256 best = i;
            for (uint256 c = 2 * i + 1; c <= 2 * i + 2 && c < len; c++) {
                uint256 x = heap[c];
                uint256 y = heap[best];
                if (stakes[x] > stakes[y] || (stakes[x] == stakes[y] && ties[x] < ties[y])) best = c;
            }
            if (best == i) return;
            (heap[i], heap[best]) = (heap[best], heap[i]);
            i = best;
        }
    }

    /// Whether `(n, t, k)` breaks `keyquorum_dkg::Params::new`'s rules (`t <= k <= n`,
    /// `t + k > n`, `t >= 2 (n - k) + 1`).
    function _badParams(uint32 n, uint32 t, uint32 k) internal pure returns (bool) {
        return t > k || k > n || t + k <= n || t < 2 * (n - k) + 1;
    }

    function _percentOf(uint32 n, uint8 percent) internal pure returns (uint32) {
        uint32 v = uint32((uint256(n) * percent + 99) / 100);
        return v == 0 ? 1 : v;
    }

    /// The ceremony's session id, as `keyquorum_dkg::ceremony::session_id` computes it for the
    /// contract's spec: ack-or-reveal, BLS12-381 G1, sequential indices, a fresh key or a
    /// reshare of the active view's (`reshareDigest`, every member a dealer). Its domain
    /// is `keyquorum_evm::Deployment::session_domain`: the chain id and this contract's address
    /// bind it to this deployment, so no post or signature of it is valid at another one.
    function _sessionId(Ceremony storage c, address[] memory committee) internal view returns (bytes32) {
        bytes memory domain = abi.encodePacked(
            "keyquorum-evm/",
            block.chainid,
            address(this),
            "/",
            config.chainId,
            "/view/",
            _decimal(c.viewNumber),
            "/session/",
            _decimal(c.number)
        );
        bytes memory head = abi.encodePacked(
            uint64(20),
            "keyquorum/session/v1",
            uint64(domain.length),
            domain,
            uint64(8),
            c.viewNumber,
            uint64(1),
            uint8(1),
            uint64(10),
            "Bls12381G1",
            uint64(8),
            uint64(c.n),
            uint64(8),
            uint64(c.t),
            uint64(8),
            uint64(c.k),
            uint64(1),
            uint8(1)
        );
        uint256 n = committee.length;
        bytes memory buf = new bytes(head.length + 144 * n + (c.reshare ? 49 : 9));
        uint256 ptr;
        assembly {
            ptr := add(buf, 32)
            mcopy(ptr, add(head, 32), mload(head))
            ptr := add(ptr, mload(head))
        }
        for (uint256 i = 0; i < n; i++) {
            Node storage node = nodes[committee[i]];
            bytes32 a = node.identity[0];
            bytes32 b = node.identity[1];
            bytes32 d = node.identity[2];
            bytes32 e = node.encryptionKey;
            assembly {
                mstore(ptr, shl(192, 96))
                mstore(add(ptr, 8), a)
                mstore(add(ptr, 40), b)
                mstore(add(ptr, 72), d)
                mstore(add(ptr, 104), shl(192, 32))
                mstore(add(ptr, 112), e)
                ptr := add(ptr, 144)
            }
        }
        bool reshare = c.reshare;
        bytes32 digest = reshareDigest;
        assembly {
            // The reshare marker: a one-byte part holding 0 (fresh key) or 1 (reshare), then
            // for a reshare the 32-byte digest as its own part. The fresh key's word written
            // reaches past `buf` into unallocated memory, which nothing uses.
            mstore(ptr, shl(192, 1))
            mstore8(add(ptr, 8), reshare)
            if reshare {
                mstore(add(ptr, 9), shl(192, 32))
                mstore(add(ptr, 17), digest)
            }
        }
        return sha256(buf);
    }

    function _decimal(uint256 v) internal pure returns (bytes memory out) {
        if (v == 0) return "0";
        uint256 len;
        for (uint256 x = v; x != 0; x /= 10) len++;
        out = new bytes(len);
        for (uint256 i = len; i > 0; i--) {
            out[i - 1] = bytes1(uint8(48 + v % 10));
            v /= 10;
        }
    }

    /// `keyquorum_crypto::hash::tagged_hash(tag, [payload])`.
    function taggedHash(string memory tag, bytes memory payload) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(uint64(bytes(tag).length), tag, uint64(payload.length), payload));
    }

    function ceremony(uint256 id)
        external
        view
        returns (
            uint64 viewNumber,
            uint32 number,
            uint32 n,
            uint32 t,
            uint32 k,
            bytes32 sessionId,
            uint64 contributeEnd,
            uint64 shareEnd,
            uint64 publishEnd,
            uint64 waitEnd
        )
    {
        Ceremony storage c = ceremonies[id];
        return (c.viewNumber, c.number, c.n, c.t, c.k, c.sessionId, c.contributeEnd, c.shareEnd, c.publishEnd, c.waitEnd);
    }

    function committeeOf(uint256 id) external view returns (address[] memory) {
        return ceremonies[id].committee;
    }

    function stakeOf(address account) external view returns (uint256 stake, uint256 unbonding, uint64 releaseBlock) {
        Node storage node = nodes[account];
        return (node.stake, node.unbonding, node.releaseBlock);
    }

    // ---------------------------------------------------------------- posts

    /// A board post of the running ceremony by the committee member at the sender's position:
    /// `signedPost` is `SignedPost::encode` (the author's 48-byte signature, then the post). A
    /// contribution is accepted in the contribute phase, a publication (attempt 0) in the
    /// publish phase, or in the share phase when it is final (`EncodingReader.acks`), each once per
    /// dealer: the phases in which the board takes them. The signature is checked by every node's board,
    /// which refuses a post it cannot attribute, not here: a member whose posts no board takes is
    /// absent from the ceremony, but its posts are on record, so a restart does not ban it as it
    /// bans a member that posted nothing (a known gap; see docs/architecture.md, "Not there yet").
    function post(bytes calldata signedPost) external {
        uint256 id = running;
        if (id == 0) revert NoViewChange();
        Ceremony storage c = ceremonies[id];
        if (signedPost.length < SIGNATURE_LEN + 41) revert MalformedPost();
        uint8 kind = uint8(signedPost[SIGNATURE_LEN]);
        uint256 named = kind == POST_CONTRIBUTION ? SIGNATURE_LEN + 33 : SIGNATURE_LEN + 37;
        uint32 dealer = _senderDealer(id, c, uint32(bytes4(signedPost[named:named + 4])));
        if (bytes32(signedPost[SIGNATURE_LEN + 1:SIGNATURE_LEN + 33]) != c.sessionId) revert WrongSession();
        if (kind == POST_CONTRIBUTION) {
            if (block.number > c.contributeEnd) revert WrongPhase();
            if (uint32(bytes4(signedPost[SIGNATURE_LEN + 33:SIGNATURE_LEN + 37])) != dealer) revert WrongDealer();
            uint256 points = uint32(bytes4(signedPost[SIGNATURE_LEN + 37:SIGNATURE_LEN + 41]));
            uint256 start = SIGNATURE_LEN + 41;
            if (points != uint256(c.n) + 1 || signedPost.length != start + 96 * points) revert MalformedPost();
            // f(0) G, uncompressed: no flag bits (the identity or a compressed form would have some).
            if (uint8(signedPost[start]) & 0xe0 != 0) revert MalformedPost();
            if (contributionHash[id][dealer] != 0) revert AlreadyPosted();
            contributionHash[id][dealer] = keccak256(signedPost);
            contributionConstant[id][dealer] = [
                bytes32(signedPost[start:start + 32]),
                bytes32(signedPost[start + 32:start + 64]),
                bytes32(signedPost[start + 64:start + 96])
            ];
        } else if (kind == POST_PUBLICATION) {
            if (block.number <= c.contributeEnd || block.number > c.publishEnd) revert WrongPhase();
            if (signedPost.length < SIGNATURE_LEN + 45 || signedPost.length > SIGNATURE_LEN + 135 + c.n / 8 + 36 * c.n) {
                revert MalformedPost();
            }
            if (uint32(bytes4(signedPost[SIGNATURE_LEN + 33:SIGNATURE_LEN + 37])) != 0) revert WrongPhase();
            // The acks matter for a publication in the share phase (only a final one is taken
            // then) and for a reshare's (its players are seen nowhere else).
            bool early = block.number <= c.shareEnd;
            uint256 ackers;
            if (early || c.reshare) {
                bool finalLog;
                (ackers, finalLog) = reader.acks(signedPost[SIGNATURE_LEN:], c.n);
                if (early && !finalLog) revert WrongPhase();
            }
            if (uint32(bytes4(signedPost[SIGNATURE_LEN + 37:SIGNATURE_LEN + 41])) != dealer) revert WrongDealer();
            if (contributionHash[id][dealer] == 0) revert NoContribution();
            if (publicationHash[id][dealer] != 0) revert AlreadyPosted();
            publicationHash[id][dealer] = keccak256(signedPost);
            if (c.reshare) acked[id] |= ackers;
        } else {
            revert MalformedPost();
        }
        emit PostAccepted(id, dealer, kind, signedPost);
    }

    /// The sender's dealer position in ceremony `id`: its committee seat, or in a reshare the
    /// position `named` (the one its post names) if the sender is the active view's member
    /// there and does not sit the current ban series out.
    function _senderDealer(uint256 id, Ceremony storage c, uint32 named) internal view returns (uint32) {
        if (!c.reshare) {
            uint256 pos = positions[id][msg.sender];
            if (pos == 0) revert NotMember();
            return uint32(pos - 1);
        }
        if (named >= viewMembers[c.viewNumber - 1].length || _dealerAccount(c, named) != msg.sender) {
            revert NotMember();
        }
        if (bannedIn[banSeries][msg.sender]) revert NotMember();
        return named;
    }

    /// The account of dealer `dealer` of a ceremony (reverts `WrongDealer` if there is none).
    function _dealerAccount(Ceremony storage c, uint32 dealer) internal view returns (address) {
        address[] storage dealers = c.reshare ? viewMembers[c.viewNumber - 1] : c.committee;
        if (dealer >= dealers.length) revert WrongDealer();
        return dealers[dealer];
    }

    // ---------------------------------------------------------------- activation

    /// Activates the running ceremony's magic block. `magicBlock` is `MagicBlock::encode`;
    /// `qualified` the dealers the board qualified (ascending), whose contributions' values at
    /// zero must add up to the group key; `signature` the new committee's signature, compressed
    /// (it seeds the next selection) and as a point; `previousSignaturePoint` the handover
    /// signature of the active view's committee (empty for view 1); `endorsers` a bitmap of the
    /// committee seats (bit i of byte i / 8) whose identity keys, given as points in seat order
    /// in `endorserPoints`, signed `endorsement`, an aggregate on the magic block's hash.
    function activate(Activation calldata a) external {
        uint256 id = running;
        if (id == 0) revert NoViewChange();
        Ceremony storage c = ceremonies[id];
        if (block.number <= c.publishEnd || block.number > c.waitEnd) revert WrongPhase();
        EncodingReader.Header memory h = reader.header(a.magicBlock, config.chainId);
        if (h.viewNumber != c.viewNumber) revert BadMagicBlock("view");
        if (h.number != c.number) revert BadMagicBlock("session");
        if (h.keyMode != (c.reshare ? KEY_MODE_RESHARE : KEY_MODE_FRESH)) revert BadMagicBlock("key mode");
        if (h.sessionId != c.sessionId) revert BadMagicBlock("session id");
        if (h.n != c.n || h.t != c.t || h.k != c.k) revert BadMagicBlock("n/t/k");
        if (h.previousHash != magicBlockHash) revert BadMagicBlock("previous hash");
        if (h.firstRound != c.waitEnd + 1) revert BadMagicBlock("first round");
        // The configuration is fixed at deployment, so a reshare's beacon, the previous view's,
        // is the configured one as well.
        if (h.beaconScheme != config.beaconScheme || h.beaconPeriod != config.beaconPeriod) {
            revert BadMagicBlock("beacon");
        }
        if (h.memberCount < c.k) revert BadMagicBlock("members");
        address[] memory members = _checkMembers(a.magicBlock, h, c);

        if (!Bls12381.matchesCompressedG1(h.groupKey, a.groupKeyPoint)) revert GroupKeyMismatch();
        if (c.reshare) {
            // The key stays; the previous committee's handover signature below is under it too.
            if (keccak256(a.groupKeyPoint) != keccak256(groupKeyPoint)) revert GroupKeyMismatch();
            _checkQualified(id, a.qualified, activeThreshold, viewMembers[currentView].length);
        } else {
            _checkQualified(id, a.qualified, c.k, c.n);
            _checkGroupKey(id, a.qualified, a.groupKeyPoint);
        }

        bytes32 hash = sha256(a.magicBlock);
        if (!Bls12381.matchesCompressedG2(a.signature, a.signaturePoint)) revert BadCommitteeSignature();
        if (!bls.verifyGroupSignature(a.groupKeyPoint, abi.encodePacked(NEW_COMMITTEE_TAG, hash), a.signaturePoint)) {
            revert BadCommitteeSignature();
        }
        if (currentView != 0) {
            if (!bls.verifyGroupSignature(groupKeyPoint, abi.encodePacked(HANDOVER_TAG, hash), a.previousSignaturePoint)) {
                revert BadHandoverSignature();
            }
        }
        // The caller names the qualified dealers, and a dealer that posts last can choose its
        // f(0) G to cancel the others', so a group key and its signature alone may be one
        // dealer's. At least t players vouch with their identity keys for the magic block their
        // own boards define (an aggregate over keys registered with proofs of possession).
        if (a.endorserPoints.length < c.t) revert TooFewEndorsers();
        bytes memory endorsersKey = _ackers(c, a.endorsers, a.endorserPoints);
        bytes32 endorsed = taggedHash("keyquorum/endorse/v1", abi.encodePacked(hash));
        if (!bls.verifyIdentitySignature(endorsersKey, abi.encodePacked(endorsed), a.endorsement)) {
            revert BadEndorsement();
        }

        currentView = c.viewNumber;
        magicBlockHash = hash;
        groupKeyPoint = a.groupKeyPoint;
        seed = sha256(abi.encodePacked("keyquorum/view-seed/v1", a.signature));
        nextStart = h.firstRound + config.viewLength;
        nextCeremonyNumber = 0;
        running = 0;
        bool keep = config.keyMode == KEY_MODE_RESHARE;
        address[] storage list = viewMembers[c.viewNumber];
        for (uint256 i = 0; i < members.length; i++) {
            nodes[members[i]].memberOfView = c.viewNumber;
            if (keep) list.push(members[i]);
        }
        if (keep) {
            reshareDigest = reader.reshareDigest(a.magicBlock, h);
            activeThreshold = h.t;
        }
        emit ViewActivated(c.viewNumber, id, hash, a.magicBlock);
    }

    function groupKey() external view returns (bytes memory) {
        return groupKeyPoint;
    }

    /// The configured beacon (scheme tag, period in seconds), which every magic block names.
    function beaconConfig() external view returns (uint8 scheme, uint32 period) {
        return (config.beaconScheme, config.beaconPeriod);
    }

    /// Members ascend by index within `1..=n`, each the committee member at that position with
    /// its registered identity and encryption key (`h.memberAt`: where each entry starts).
    function _checkMembers(bytes calldata b, EncodingReader.Header memory h, Ceremony storage c)
        internal
        view
        returns (address[] memory members)
    {
        members = new address[](h.memberCount);
        uint64 last = 0;
        for (uint256 i = 0; i < h.memberCount; i++) {
            uint256 at = h.memberAt[i];
            uint64 index = uint64(bytes8(b[at:at + 8]));
            if (index <= last || index > c.n) revert BadMagicBlock("member index");
            last = index;
            address account = c.committee[index - 1];
            Node storage node = nodes[account];
            if (
                bytes32(b[at + 8:at + 40]) != node.identity[0] || bytes32(b[at + 40:at + 72]) != node.identity[1]
                    || bytes32(b[at + 72:at + 104]) != node.identity[2]
                    || bytes32(b[at + 104:at + 136]) != node.encryptionKey
            ) revert BadMagicBlock("member identity");
            members[i] = account;
        }
    }

    /// The qualified dealers: at least `least` of the `dealers` positions, ascending, each with
    /// a contribution on chain.
    function _checkQualified(uint256 id, uint32[] calldata qualified, uint256 least, uint256 dealers)
        internal
        view
    {
        if (qualified.length < least || qualified.length > dealers) revert BadQualifiedSet();
        for (uint256 i = 0; i < qualified.length; i++) {
            uint32 d = qualified[i];
            if ((i > 0 && d <= qualified[i - 1]) || d >= dealers) revert BadQualifiedSet();
            if (contributionHash[id][d] == 0) revert BadQualifiedSet();
        }
    }

    /// The group key of a fresh key is the sum of the qualified dealers' `f(0) G`: at least `k`
    /// of them (`_checkQualified`). So nobody can activate a key of their own choosing: its
    /// secret is shared by the dealers, and signing under it takes `t` players' shares.
    function _checkGroupKey(uint256 id, uint32[] calldata qualified, bytes calldata point) internal view {
        bytes memory sum;
        for (uint256 i = 0; i < qualified.length; i++) {
            bytes memory p = _g1Point(contributionConstant[id][qualified[i]]);
            sum = i == 0 ? p : Bls12381.g1Add(sum, p);
        }
        if (keccak256(sum) != keccak256(point)) revert GroupKeyMismatch();
    }

    /// 96 bytes of uncompressed x || y as a 128-byte precompile point.
    function _g1Point(bytes32[3] storage w) internal view returns (bytes memory p) {
        bytes32 w0 = w[0];
        bytes32 w1 = w[1];
        bytes32 w2 = w[2];
        p = new bytes(128);
        assembly {
            // x = w0 || w1[0..16], y = w1[16..32] || w2.
            mstore(add(p, 48), w0)
            mstore(add(p, 80), and(w1, not(0xffffffffffffffffffffffffffffffff)))
            mstore(add(p, 112), shl(128, w1))
            mstore(add(p, 128), w2)
        }
    }

    // ---------------------------------------------------------------- fraud proofs

    /// Equivocation: `payloadA` and `payloadB` are two different contribution payloads
    /// (`Post::signed_payload`) for the same session and dealer, `sigA` and `sigB` the
    /// dealer's identity signatures on them (precompile encoding), `identityPoint` its identity
    /// key. The dealer is slashed `misbehaviourPercent` of its stake, once per ceremony; the
    /// sender, unless it is the culprit, is paid `reporterPercent` of that, the rest is burned.
    function proveEquivocation(
        uint256 id,
        bytes calldata payloadA,
        bytes calldata sigA,
        bytes calldata payloadB,
        bytes calldata sigB,
        bytes calldata identityPoint
    ) external {
        Ceremony storage c = ceremonies[id];
        if (c.sessionId == 0) revert NoViewChange();
        if (payloadA.length != 73 || payloadB.length != 73) revert NotEquivocation();
        if (uint8(payloadA[0]) != SIGNED_CONTRIBUTION || uint8(payloadB[0]) != SIGNED_CONTRIBUTION) {
            revert NotEquivocation();
        }
        if (keccak256(payloadA[1:37]) != keccak256(payloadB[1:37]) || keccak256(payloadA) == keccak256(payloadB)) {
            revert NotEquivocation();
        }
        if (bytes32(payloadA[1:33]) != c.sessionId) revert WrongSession();
        address culprit = _dealerAccount(c, uint32(bytes4(payloadA[33:37])));
        if (slashedIn[id][culprit]) revert AlreadySlashed();
        Node storage node = nodes[culprit];
        if (keccak256(identityPoint) != node.identityPointHash) revert BadIdentityKey();
        if (!_postSignedBy(identityPoint, payloadA, sigA)) revert BadPostSignature();
        if (!_postSignedBy(identityPoint, payloadB, sigB)) revert BadPostSignature();
        slashedIn[id][culprit] = true;
        _slash(culprit, id, "equivocation");
    }

    /// A forged ack aggregate: `signedPost` is a publication accepted on chain (its hash is
    /// stored) whose aggregate signature does not verify, under the named ackers' identity keys
    /// (`ackerPoints`, in bitmap order), on the ack payload of its session, dealer and
    /// commitment hash; `aggregatePoint` is that signature as a point. Every identity key was
    /// registered with a proof of possession, so an aggregate of valid acks always verifies:
    /// one that does not was forged by the dealer. Slashed as for equivocation. Posted bytes that
    /// are no point a signature can be (no point at all, or the identity under ackers whose keys
    /// do not sum to it) are proven with an `aggregatePoint` of other than 128 bytes
    /// (`Bls12381Verifier.isForgedAckAggregate`).
    function proveBadAckAggregate(
        uint256 id,
        bytes calldata signedPost,
        bytes calldata aggregatePoint,
        bytes[] calldata ackerPoints
    ) external {
        Ceremony storage c = ceremonies[id];
        if (signedPost.length < SIGNATURE_LEN + 77) revert MalformedPost();
        uint32 dealer = uint32(bytes4(signedPost[SIGNATURE_LEN + 37:SIGNATURE_LEN + 41]));
        // A stored hash names a dealer of the ceremony; no post hashes to zero.
        if (publicationHash[id][dealer] != keccak256(signedPost)) revert NoPublication();
        bytes calldata p = signedPost[SIGNATURE_LEN:];
        uint256 bitmapLen = uint32(bytes4(p[73:77]));
        uint256 at = 77 + bitmapLen;
        if (p.length < at + 1 + 48 || uint8(p[at]) != 1) revert NotAFault();
        // With an `aggregatePoint` of other than 128 bytes, the posted bytes are claimed to be
        // no point a signature can be, `aggregatePoint` the square root that shows it where one
        // is needed (`Bls12381Verifier.isForgedAckAggregate`).
        bytes memory aggregatePk = _ackers(c, p[77:at], ackerPoints);
        uint8 verdict = bls.isForgedAckAggregate(p[at + 1:at + 49], aggregatePoint, aggregatePk, p[1:73]);
        if (verdict == 2) revert BadAggregatePoint();
        if (verdict == 0) revert NotAFault();
        address culprit = _dealerAccount(c, dealer);
        if (slashedIn[id][culprit]) revert AlreadySlashed();
        slashedIn[id][culprit] = true;
        _slash(culprit, id, "bad_ack_signature");
    }

    /// The sum of the identity keys of the players a seat bitmap names, each given as
    /// a point and checked against the key registered by the committee member at that position.
    function _ackers(Ceremony storage c, bytes calldata bitmap, bytes[] calldata points)
        internal
        view
        returns (bytes memory sum)
    {
        uint256 next;
        for (uint256 i = 0; i < bitmap.length * 8; i++) {
            if (uint8(bitmap[i / 8]) & (1 << (i % 8)) == 0) continue;
            if (i >= c.n || next >= points.length) revert BadIdentityKey();
            bytes calldata point = points[next++];
            if (keccak256(point) != nodes[c.committee[i]].identityPointHash) revert BadIdentityKey();
            sum = sum.length == 0 ? point : Bls12381.g2Add(sum, point);
        }
        if (next != points.length || next == 0) revert BadIdentityKey();
    }

    /// A bad reveal: `publication` (accepted on chain) reveals for `player` a share `s` with
    /// `s G` other than the player's point `E_j` in the dealer's `contribution` (also the one on
    /// chain). Slashed as for equivocation.
    function proveBadReveal(uint256 id, bytes calldata contribution, bytes calldata publication, uint32 player)
        external
    {
        Ceremony storage c = ceremonies[id];
        if (publication.length < SIGNATURE_LEN + 77) revert MalformedPost();
        uint32 dealer = uint32(bytes4(publication[SIGNATURE_LEN + 37:SIGNATURE_LEN + 41]));
        if (publicationHash[id][dealer] != keccak256(publication)) revert NoPublication();
        if (contributionHash[id][dealer] != keccak256(contribution)) revert NoContribution();
        if (player >= c.n) revert NotAFault();
        bytes32 share = reader.revealed(publication[SIGNATURE_LEN:], player);
        // The player's point: position player + 1 of the n + 1 points (the first is f(0) G).
        uint256 at = SIGNATURE_LEN + 41 + 96 * (uint256(player) + 1);
        bytes memory expected = new bytes(128);
        if (uint8(contribution[at]) & 0x40 == 0) {
            expected = abi.encodePacked(
                bytes16(0), contribution[at:at + 48], bytes16(0), contribution[at + 48:at + 96]
            );
        }
        if (keccak256(Bls12381.g1MulGenerator(share)) == keccak256(expected)) revert NotAFault();
        address culprit = _dealerAccount(c, dealer);
        if (slashedIn[id][culprit]) revert AlreadySlashed();
        slashedIn[id][culprit] = true;
        _slash(culprit, id, "bad_reveal");
    }

    function _postSignedBy(bytes calldata identityPoint, bytes calldata payload, bytes calldata sig)
        internal
        view
        returns (bool)
    {
        bytes32 digest = taggedHash("keyquorum/post/v1", payload);
        return bls.verifyIdentitySignature(identityPoint, abi.encodePacked(digest), sig);
    }

    function _slash(address culprit, uint256 id, string memory fault) internal {
        Node storage node = nodes[culprit];
        // A proof can land after the culprit's stake was unlocked and unbonded: what it has not
        // withdrawn is slashed too, taken from the unbonding amount first.
        uint256 amount = (node.stake + node.unbonding) * config.misbehaviourPercent / 100;
        uint256 fromUnbonding = amount < node.unbonding ? amount : node.unbonding;
        node.unbonding -= fromUnbonding;
        _lowerStake(node, node.stake - (amount - fromUnbonding));
        uint256 reward = msg.sender == culprit ? 0 : amount * config.reporterPercent / 100;
        burned += amount - reward;
        emit Slashed(culprit, id, fault, amount, msg.sender, reward, amount - reward);
        if (reward > 0) {
            (bool ok,) = msg.sender.call{value: reward}("");
            if (!ok) revert TransferFailed();
        }
    }
}
