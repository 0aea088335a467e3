"""Issue 17 item 6, the defects fixed here: the settled average is shown with two
decimals like the running one ("平均评分 4.33", not 4.3333)."""

from __future__ import annotations

from volunteer_market.extensions import db
from volunteer_market.models import Settlement

from ..conftest import login
from ..factories import rate_delivery
from ..ratings.conftest import more_residents


def test_the_settled_average_has_two_decimals(client, scene):
    w = scene.world
    extra = more_residents(w, 1)[0]
    delivery = scene.record(hours_ago=10, beneficiaries=[w.resident_a, w.resident_a2, extra])
    for user, score in ((w.resident_a, 5), (w.resident_a2, 4), (extra, 4)):
        rate_delivery(user, delivery, score)
    db.session.remove()
    settlement = db.session.scalars(
        db.select(Settlement).where(Settlement.delivery_id == delivery.id)
    ).one()  # every beneficiary rated: settled automatically
    assert str(settlement.average_score).startswith("4.333")
    login(client, "secretary_a")
    html = client.get(f"/deliveries/{delivery.id}/ratings").get_data(as_text=True)
    assert "<dd>4.33</dd>" in html and "4.3333" not in html
