"""/api/v1/rewards, /api/v1/redemptions, /api/v1/wallet: the rewards shop (积分兑换)."""

from __future__ import annotations

from typing import Any

from flask import request

from ..database import atomic
from ..http.links import pickup_url
from ..http.uploads import read_upload, send_upload, upload_transaction
from ..models import Redemption, Reward
from ..schemas.common import PageArgs, page_of
from ..schemas.rewards import (
    CancelIn,
    FulfilIn,
    RedemptionCreatedOut,
    RedemptionIn,
    RedemptionOut,
    RedemptionQuery,
    RejectIn,
    RewardIn,
    RewardOut,
    RewardPatchIn,
    RewardQuery,
    StockChangeOut,
    WalletOut,
)
from ..services import ledger as ledger_service
from ..services import permissions, wallet_expiry
from ..services import redemptions as redemption_service
from ..services import rewards as reward_service
from .common import IMAGE_RESPONSE_DOC, IMAGE_UPLOAD_DOC, actor, make_blueprint, paginate
from .idempotency import IDEMPOTENCY_PARAMETER, current_key, idempotent

rewards_blp = make_blueprint("api_rewards", "/rewards", "Rewards catalogue (积分兑换奖品)")
redemptions_blp = make_blueprint("api_redemptions", "/redemptions", "Redemptions (积分兑换)")
wallet_blp = make_blueprint("api_wallet", "/wallet", "The caller's wallet and expiring points")

NO_STORE = {"Cache-Control": "no-store"}


def _managed(reward_id: int) -> Reward:
    """Return a reward the caller manages (404 if invisible, 403 if not a manager)."""
    reward = reward_service.get_visible_reward(actor(), reward_id)
    permissions.require(actor(), "reward.manage", reward)
    return reward


# --- rewards ----------------------------------------------------------------------------


@rewards_blp.route("", methods=["POST"])
@rewards_blp.arguments(RewardIn)
@rewards_blp.response(201, RewardOut)
def create_reward(data: dict) -> Any:
    """Offer a reward on an area (secretary: own community or its grids; officer: own
    subtree). ``stock`` null or absent: unlimited."""
    with atomic():
        return reward_service.create_reward(actor(), **data)


@rewards_blp.route("", methods=["GET"])
@rewards_blp.arguments(RewardQuery, location="query")
@rewards_blp.response(200, page_of(RewardOut))
def list_rewards(args: dict) -> dict:
    """Rewards open now to the caller's areas, cheapest first; ``manage=true``: the
    rewards the caller manages (secretary, officer), including closed ones."""
    stmt = reward_service.list_rewards(actor(), manage=args["manage"])
    return paginate(stmt, args["page"], args["per_page"])


@rewards_blp.route("/<int:reward_id>", methods=["GET"])
@rewards_blp.response(200, RewardOut)
def get_reward(reward_id: int) -> Any:
    """One reward the caller may see."""
    return reward_service.get_visible_reward(actor(), reward_id)


@rewards_blp.route("/<int:reward_id>", methods=["PATCH"])
@rewards_blp.arguments(RewardPatchIn)
@rewards_blp.response(200, RewardOut)
def patch_reward(data: dict, reward_id: int) -> Any:
    """Change fields of a reward (its managers). A new ``stock`` figure is recorded as
    an audited stock change; ``stock: null`` makes it unlimited."""
    with atomic():
        reward = _managed(reward_id)
        note = data.pop("stock_note", None)
        return reward_service.update_reward(actor(), reward, stock_note=note, **data)


@rewards_blp.route("/<int:reward_id>/retire", methods=["POST"])
@rewards_blp.response(200, RewardOut)
def retire_reward(reward_id: int) -> Any:
    """Close a reward for good (its managers); held redemptions stay valid."""
    with atomic():
        return reward_service.retire_reward(actor(), _managed(reward_id))


@rewards_blp.route("/<int:reward_id>/image", methods=["PUT"])
@rewards_blp.response(200, RewardOut)
@rewards_blp.doc(**IMAGE_UPLOAD_DOC)
def put_image(reward_id: int) -> Any:
    """Upload the reward's picture (multipart field ``file``; PNG/JPEG/WebP, <= 2 MB)."""
    data = read_upload(request.files.get("file"))
    with upload_transaction() as files, atomic():
        reward = _managed(reward_id)
        files.replace(reward.image_path)
        reward_service.set_image(actor(), reward, files.store(data, "file"))
    return reward


@rewards_blp.route("/<int:reward_id>/image", methods=["GET"])
@rewards_blp.doc(**IMAGE_RESPONSE_DOC)
def get_image(reward_id: int) -> Any:
    """The picture of a reward the caller may see."""
    return send_upload(reward_service.get_visible_reward(actor(), reward_id).image_path)


@rewards_blp.route("/<int:reward_id>/stock-changes", methods=["GET"])
@rewards_blp.arguments(PageArgs, location="query")
@rewards_blp.response(200, page_of(StockChangeOut))
def stock_changes(args: dict, reward_id: int) -> dict:
    """Every movement of the reward's stock, newest first (its managers)."""
    reward = _managed(reward_id)
    return paginate(reward_service.stock_changes_stmt(reward), args["page"], args["per_page"])


@rewards_blp.route("/<int:reward_id>/redemptions", methods=["POST"])
@idempotent
@rewards_blp.arguments(RedemptionIn)
@rewards_blp.response(201, RedemptionCreatedOut)
@rewards_blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
def redeem(data: dict, reward_id: int) -> Any:
    """Redeem ``quantity`` items (a member in the reward's scope): the points move from
    available to held, the stock is reserved and a pickup code is issued, all at once.
    409 when the wallet, the stock or the per-member limit does not allow it. With an
    ``Idempotency-Key`` a retry returns the first result."""
    user = actor()
    with atomic():
        reward = reward_service.get_visible_reward(user, reward_id)
        issued = redemption_service.request(
            user, reward, data["quantity"], idempotency_key=current_key()
        )
        body = redemption_service.present(issued.redemption, user)
        url = pickup_url(issued.pickup_code)
        body.update(
            pickup_code=issued.pickup_code,
            pickup_url=url,
            pickup_qr_svg=redemption_service.qr_svg_data_uri(url),
        )
    return body, 201, NO_STORE


# --- redemptions -------------------------------------------------------------------------


def _present(redemption: Redemption) -> dict[str, Any]:
    return redemption_service.present(redemption, actor())


@redemptions_blp.route("", methods=["GET"])
@redemptions_blp.arguments(RedemptionQuery, location="query")
@redemptions_blp.response(200, page_of(RedemptionOut))
def list_redemptions(args: dict) -> dict:
    """My redemptions, plus those of the communities I am secretary of (and an
    officer's subtree), newest first. Filters: ``mine``, ``status``, ``reward_id``,
    ``community_id``. Pickup codes appear only on my own held redemptions."""
    stmt = redemption_service.redemptions_stmt(
        actor(),
        mine=args["mine"],
        status=args.get("status"),
        reward_id=args.get("reward_id"),
        community_id=args.get("community_id"),
    )
    page = paginate(stmt, args["page"], args["per_page"])
    page["items"] = [_present(r) for r in page["items"]]
    return page


@redemptions_blp.route("/<int:redemption_id>", methods=["GET"])
@redemptions_blp.response(200, RedemptionOut)
def get_redemption(redemption_id: int) -> Any:
    """One redemption the caller may see."""
    return (
        _present(redemption_service.get_visible_redemption(actor(), redemption_id)),
        200,
        NO_STORE,
    )


@redemptions_blp.route("/<int:redemption_id>/fulfil", methods=["POST"])
@redemptions_blp.arguments(FulfilIn)
@redemptions_blp.response(200, RedemptionOut)
def fulfil(data: dict, redemption_id: int) -> Any:
    """Hand the reward over on the member's pickup code (the community's secretary):
    the held points go to the redemption sink. A wrong code is 422, a redemption no
    longer held 409."""
    with atomic():
        redemption = redemption_service.get_visible_redemption(actor(), redemption_id)
        redemption_service.fulfil(actor(), redemption, data["pickup_code"])
        return _present(redemption)


@redemptions_blp.route("/<int:redemption_id>/cancel", methods=["POST"])
@redemptions_blp.arguments(CancelIn)
@redemptions_blp.response(200, RedemptionOut)
def cancel(data: dict, redemption_id: int) -> Any:
    """Cancel a held redemption (its member, the community's secretary): points and
    stock return."""
    with atomic():
        redemption = redemption_service.get_visible_redemption(actor(), redemption_id)
        redemption_service.cancel(actor(), redemption, data.get("reason"))
        return _present(redemption)


@redemptions_blp.route("/<int:redemption_id>/reject", methods=["POST"])
@redemptions_blp.arguments(RejectIn)
@redemptions_blp.response(200, RedemptionOut)
def reject(data: dict, redemption_id: int) -> Any:
    """Refuse a held redemption with a required reason (the community's secretary):
    points and stock return."""
    with atomic():
        redemption = redemption_service.get_visible_redemption(actor(), redemption_id)
        redemption_service.reject(actor(), redemption, data["reason"])
        return _present(redemption)


# --- wallet ---------------------------------------------------------------------------------


@wallet_blp.route("", methods=["GET"])
@wallet_blp.response(200, WalletOut)
def wallet() -> dict:
    """My wallet: available, held, the service record, and the points that expire at
    the end of this year under my community's policy (null if they never expire)."""
    user = actor()
    return {**ledger_service.balances(user), "expiring": wallet_expiry.expiring_soon(user)}
