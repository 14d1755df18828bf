"""The site's Flower ClientApp: answers profile queries, trains with DP, evaluates.

Which site a ClientApp serves comes from its node config (``site-config``, a path to
site.toml) in a deployment, or from ``sites-dir`` + ``partition-id`` in a simulation.
A site that fails its gate or would pass its privacy budget answers with a reason
instead of an update; the server records it and goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from client.federation.final_model import decrypt_final_reply
from client.federation.mods import clip_update_when_asked
from client.federation.site_replies import (
    excluded,
    moments_reply,
    site_record_of,
    statistics_reply,
)
from client.node import site_config_path
from client.privacy.egress import record_egress
from client.site import Site
from common import keys
from common.errors import FedlifeError
from common.wire.messages import (
    ProfileRecord,
    ProfileReply,
)

SiteResolver = Callable[[Context], Path]


def make_client_app(sites_dir: str | None = None, mods: Sequence[Mod] | None = None) -> ClientApp:
    """Build the ClientApp; ``sites_dir`` overrides the run config's (simulations).

    ``mods`` wrap the train function only (``@app.train(mods=...)``), e.g. the
    attacks of ``simulations.attacks``; innermost, every site clips its update when
    a client-side central-DP wrapper asks (``client.federation.mods``).
    """
    app = ClientApp(mods=[record_egress])

    def load_site(context: Context) -> Site:
        return Site.from_path(site_config_path(context, sites_dir))

    @app.query()
    def profile(message: Message, context: Context) -> Message:
        site = load_site(context)
        config = message.content[keys.CONFIG]
        try:
            if str(config.get(keys.RELEASE, "")) == keys.MOMENTS:
                return moments_reply(site, message)
            if str(config.get(keys.RELEASE, "")) == keys.STATISTICS:
                return statistics_reply(site, message)
            if str(config.get(keys.RELEASE, "")) == keys.DECRYPT_FINAL:
                return decrypt_final_reply(site, message, he_folder(context, site))
            spec = site.declared_spec()
            reasons = site.released_gate_reasons()
        except FedlifeError as error:
            return excluded(message, site.name, str(error))
        record = ProfileRecord(feature_spec=spec.to_json(), gate="; ".join(reasons))
        reply = ProfileReply(profile=record, site=site_record_of(site))
        return Message(reply.to_content(), reply_to=message)

    @app.train(mods=[*(mods or []), clip_update_when_asked])
    def fit(message: Message, context: Context) -> Message:
        # Torch and Opacus load with the first train message, not for the queries.
        from client.federation.train_round import audit_train, train_reply

        site = load_site(context)
        try:
            reply = train_reply(site, message, he_folder(context, site))
        except FedlifeError as error:
            reply = excluded(message, site.name, str(error))
        audit_train(site, message, reply)
        return reply

    @app.evaluate()
    def assess(message: Message, context: Context) -> Message:
        from client.federation.evaluate_round import evaluate_reply

        site = load_site(context)
        return evaluate_reply(site, message, he_folder(context, site))

    return app


def he_folder(context: Context, site: Site) -> Path:
    """Where this site's secret HE context is: the bundle ``fedlife-site join`` names in
    the node config, else beside its site.toml (simulations)."""
    bundle = context.node_config.get(keys.BUNDLE)
    return Path(str(bundle)) if bundle else site.config.base_dir


app = make_client_app()
