# pbxfleet: OMniLeads objects through OMniLeads' own code.
#
# Run by agents-node inside `python manage.py shell` (the script arrives on
# stdin, after a first line that sets REQ, the request). It uses only OMniLeads'
# models, its Redis connection and its synchronizers (the code the web UI and the
# REST API call), so the trunk and the routes are OMniLeads objects and
# OMniLeads writes its own configuration stream, reloads Asterisk over AMI and
# writes its Redis families. It prints one line: PBXFLEET-RESULT <json>.
# Nothing here logs or returns the trunk secret except inside a snapshot's
# text_config, which the agent keeps in its journal (as it keeps previous files).
import json
import traceback


def _pbxfleet_main(req):
    from django.conf import settings
    from configuracion_telefonia_app import models as m

    out = {"version": _version(settings), "features": _features(m)}
    try:
        from ominicontacto_app.services.redis.connection import create_redis_connection
        from configuracion_telefonia_app import regeneracion_configuracion_telefonia as sync
    except ImportError as e:
        # Releases that keep the families in Asterisk's AstDB instead of Redis.
        out["features"].append("the Redis families (%s)" % e)
        return out
    action = req["action"]
    if action == "inspect":
        out["state"] = _state(m, create_redis_connection(), req)
        return out
    if out["features"]:
        raise RuntimeError("this OMniLeads lacks " + ", ".join(out["features"]))
    if action == "apply":
        out["changed"], out["sync_errors"] = _apply(m, sync, req)
    elif action == "restore":
        out["changed"], out["sync_errors"] = _restore(m, sync, req)
    else:
        raise RuntimeError("unknown action " + action)
    out["state"] = _state(m, create_redis_connection(), req)
    return out


def _version(settings):
    for name in ("OML_BRANCH", "OML_RELEASE"):
        v = getattr(settings, name, None)
        if v:
            return str(v)
    try:
        from ominicontacto_app import version
        return str(getattr(version, "OML_BRANCH", "") or "")
    except Exception:
        return ""


def _features(m):
    """The model fields pbxfleet relies on that this OMniLeads lacks."""
    missing = []
    for model, fields in (("TroncalSIP", ("nombre", "tecnologia", "text_config", "canales_maximos", "caller_id")),
                          ("RutaSaliente", ("nombre", "ring_time", "dial_options")),
                          ("PatronDeDiscado", ("prepend", "prefix", "match_pattern", "orden")),
                          ("OrdenTroncal", ("orden", "troncal")),
                          ("RutaEntrante", ("telefono", "destino", "idioma"))):
        cls = getattr(m, model, None)
        if cls is None:
            missing.append(model)
            continue
        for f in fields:
            try:
                cls._meta.get_field(f)
            except Exception:
                missing.append(model + "." + f)
    return missing


def _trunk_def(t):
    return {"id": t.id, "name": t.nombre, "tecnologia": t.tecnologia, "text_config": t.text_config,
            "canales_maximos": t.canales_maximos, "caller_id": t.caller_id, "register_string": t.register_string}


def _route_def(r):
    return {"id": r.id, "name": r.nombre, "ring_time": r.ring_time, "dial_options": r.dial_options,
            "patterns": [{"prepend": p.prepend or "", "prefix": p.prefix or "", "pattern": p.match_pattern}
                         for p in r.patrones_de_discado.all().order_by("orden")],
            "trunks": [o.troncal.nombre for o in r.secuencia_troncales.all().order_by("orden")]}


def _inbound_def(r):
    return {"id": r.id, "name": r.nombre, "did": r.telefono, "dst_type": r.destino.tipo,
            "dst_object": r.destino.object_id, "dst_name": r.destino.nombre,
            "lang": r.idioma.paquete_idioma if r.idioma_id else ""}


def _state(m, rc, req):
    st = {"trunk": None, "trunk_redis": {}, "route": None, "route_redis": {}, "inbound": {}, "inbound_redis": {}}
    t = m.TroncalSIP.objects.filter(nombre=req["trunk"]["name"]).first()
    if t is not None:
        st["trunk"] = _trunk_def(t)
        st["trunk_redis"] = rc.hgetall("OML:TRUNK:%d" % t.id)
    route = req.get("route")
    if route:
        r = m.RutaSaliente.objects.filter(nombre=route["name"]).first()
        if r is not None:
            st["route"] = _route_def(r)
            st["route_redis"] = rc.hgetall("OML:OUTR:%d" % r.id)
    for did in req.get("dids", []):
        r = m.RutaEntrante.objects.filter(telefono=did).first()
        st["inbound"][did] = _inbound_def(r) if r is not None else None
        st["inbound_redis"][did] = rc.hgetall("OML:INR:%s" % did)
    return st


def _sync(errors, what, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # OmlError (RestablecerConfiguracionTelefonicaError) and AMI errors
        errors.append("%s: %s" % (what, str(e).strip() or type(e).__name__))


def _put_trunk(m, sync, d, errors):
    """Create or update the trunk from d; returns (trunk, changed)."""
    t = m.TroncalSIP.objects.filter(nombre=d["name"]).first()
    want = {"tecnologia": d.get("tecnologia", m.TroncalSIP.PJSIP), "text_config": d["text_config"],
            "canales_maximos": d.get("canales_maximos", 1000), "caller_id": d.get("caller_id") or None,
            "register_string": d.get("register_string") or None}
    changed = t is None or any(getattr(t, k) != v for k, v in want.items())
    if t is None:
        t = m.TroncalSIP(nombre=d["name"])
    if changed:
        for k, v in want.items():
            setattr(t, k, v)
        t.full_clean()
        t.save()
    return t, changed


def _put_route(m, d):
    """Create or update the outbound route from d; returns (route, changed)."""
    from django.db import transaction
    with transaction.atomic():
        r = m.RutaSaliente.objects.filter(nombre=d["name"]).first()
        changed = r is None
        if r is None:
            r = m.RutaSaliente(nombre=d["name"])
        if r.ring_time != d["ring_time"] or r.dial_options != d["dial_options"] or changed:
            r.ring_time = d["ring_time"]
            r.dial_options = d["dial_options"]
            r.full_clean()
            r.save()
            changed = True
        cur = _route_def(r)
        want_p = [{"prepend": p.get("prepend", ""), "prefix": p.get("prefix", ""), "pattern": p["pattern"]}
                  for p in d["patterns"]]
        if cur["patterns"] != want_p:
            r.patrones_de_discado.all().delete()
            for i, p in enumerate(want_p, start=1):
                pd = m.PatronDeDiscado(ruta_saliente=r, orden=i, prepend=p["prepend"] or None,
                                       prefix=p["prefix"] or None, match_pattern=p["pattern"])
                pd.full_clean()
                pd.save()
            changed = True
        if cur["trunks"] != d["trunks"]:
            r.secuencia_troncales.all().delete()
            for i, name in enumerate(d["trunks"], start=1):
                m.OrdenTroncal(ruta_saliente=r, orden=i, troncal=m.TroncalSIP.objects.get(nombre=name)).save()
            changed = True
    return r, changed


def _trunk_redis_ok(rc, t):
    h = rc.hgetall("OML:TRUNK:%d" % t.id)
    return h.get("NAME") == t.nombre and h.get("TECH") == t.tecnologia_astdb


def _route_redis_ok(rc, r):
    h = rc.hgetall("OML:OUTR:%d" % r.id)
    trunks = [str(o.troncal.id) for o in r.secuencia_troncales.all().order_by("orden")]
    return h.get("NAME") == r.nombre and [h.get("TRUNK-%d" % i) for i in range(1, len(trunks) + 1)] == trunks \
        and h.get("TRUNKS") == str(len(trunks))


def _apply(m, sync, req):
    from ominicontacto_app.services.redis.connection import create_redis_connection
    rc = create_redis_connection()
    errors, changed = [], []
    t, ch = _put_trunk(m, sync, req["trunk"], errors)
    if ch or not _trunk_redis_ok(rc, t):
        changed.append("trunk")
        _sync(errors, "trunk synchronizer", sync.SincronizadorDeConfiguracionTroncalSipEnAsterisk().regenerar_troncales, t)
    route = req.get("route")
    if route and not errors:
        r, ch = _put_route(m, route)
        if ch or not _route_redis_ok(rc, r):
            changed.append("route")
            _sync(errors, "outbound route synchronizer",
                  sync.SincronizadorDeConfiguracionDeRutaSalienteEnAsterisk().regenerar_asterisk, r)
    campaign = req.get("inbound_campaign")
    if campaign and not errors:
        for did in req.get("dids", []):
            if m.RutaEntrante.objects.filter(telefono=did).exists():
                continue
            ri = _create_inbound(m, did, campaign)
            changed.append("inbound " + did)
            _sync(errors, "inbound route synchronizer",
                  sync.SincronizadorDeConfiguracionRutaEntranteAsterisk().regenerar_asterisk, ri)
    return changed, errors


def _create_inbound(m, did, campaign):
    from ominicontacto_app.models import Campana
    c = Campana.objects.filter(nombre=campaign).first()
    if c is None:
        raise RuntimeError("inbound campaign %r does not exist in OMniLeads" % campaign)
    dst = m.DestinoEntrante.get_nodo_ruta_entrante(c)
    lang = m.AudiosAsteriskConf.objects.filter(paquete_idioma="es").first() or m.AudiosAsteriskConf.objects.first()
    name = ("pbxfleet_" + "".join(ch if ch.isalnum() else "_" for ch in did))[:30]
    ri = m.RutaEntrante(nombre=name, telefono=did, idioma=lang, destino=dst)
    ri.full_clean()
    ri.save()
    return ri


def _restore(m, sync, req):
    """Put back the objects of a snapshot (req["snapshot"], a _state)."""
    from ominicontacto_app.services.redis.connection import create_redis_connection
    rc = create_redis_connection()
    snap = req["snapshot"]
    errors, changed = [], []
    # The trunk first when it existed (the route may point at it) ...
    if snap.get("trunk"):
        t, ch = _put_trunk(m, sync, snap["trunk"], errors)
        if ch or not _trunk_redis_ok(rc, t):
            changed.append("trunk")
            _sync(errors, "trunk synchronizer",
                  sync.SincronizadorDeConfiguracionTroncalSipEnAsterisk().regenerar_troncales, t)
    route = req.get("route")
    if route:
        if snap.get("route"):
            r, ch = _put_route(m, snap["route"])
            if ch or not _route_redis_ok(rc, r):
                changed.append("route")
                _sync(errors, "outbound route synchronizer",
                      sync.SincronizadorDeConfiguracionDeRutaSalienteEnAsterisk().regenerar_asterisk, r)
        else:
            r = m.RutaSaliente.objects.filter(nombre=route["name"]).first()
            if r is not None:
                changed.append("route deleted")
                _sync(errors, "outbound route synchronizer",
                      sync.SincronizadorDeConfiguracionDeRutaSalienteEnAsterisk().eliminar_y_regenerar_asterisk, r)
                r.delete()
    for did, d in snap.get("inbound", {}).items():
        if d is None:
            ri = m.RutaEntrante.objects.filter(telefono=did, nombre__startswith="pbxfleet_").first()
            if ri is not None:
                changed.append("inbound %s deleted" % did)
                _sync(errors, "inbound route synchronizer",
                      sync.SincronizadorDeConfiguracionRutaEntranteAsterisk().eliminar_y_regenerar_asterisk, ri)
                ri.delete()
    # ... and deleted last, once no route of pbxfleet's points at it.
    if not snap.get("trunk"):
        t = m.TroncalSIP.objects.filter(nombre=req["trunk"]["name"]).first()
        if t is not None:
            if t.ordenes_en_rutas_salientes.exists():
                errors.append("trunk %s: still used by an outbound route pbxfleet did not create" % t.nombre)
            else:
                changed.append("trunk deleted")
                _sync(errors, "trunk synchronizer",
                      sync.SincronizadorDeConfiguracionTroncalSipEnAsterisk().eliminar_troncal_y_regenerar_asterisk, t)
                t.delete()
    return changed, errors


try:
    _pbxfleet_out = _pbxfleet_main(REQ)  # noqa: F821 (REQ is set by the first line)
except Exception as _pbxfleet_e:
    _pbxfleet_out = {"error": "%s: %s" % (type(_pbxfleet_e).__name__, _pbxfleet_e),
                     "trace": traceback.format_exc().splitlines()[-3:]}
print("PBXFLEET-RESULT " + json.dumps(_pbxfleet_out, default=str))
