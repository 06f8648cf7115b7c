"""The ceiling of the ASGI server and Litestar on this machine, for bench/tenancy.py.

One route that answers two bytes: no middleware, session, database, template or logging. Served by the same
server, with the same load, as the portal, its throughput is the most any page of one process could reach.
"""

from litestar import Litestar, get


@get(["/", "/health"], media_type="text/plain", sync_to_thread=False)
def ok() -> str:
    return "ok"


app = Litestar([ok], logging_config=None, openapi_config=None)
