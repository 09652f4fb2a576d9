"""Departments and users (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from engine.accounts import directory
from engine.api.deps import ActorDep, AdminDep, GovflowDep, OpsDep
from engine.api.routes import errors
from engine.api.schemas import DepartmentIn, DepartmentOut, UserIn, UserOut
from engine.store.models import AuditEvent

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/departments", response_model=list[DepartmentOut], responses=errors(401))
def list_departments(
    actor: ActorDep,
    govflow: GovflowDep,
) -> list[DepartmentOut]:
    with govflow.database.read_session() as session:
        return [
            DepartmentOut(code=d.code, name=d.name) for d in directory.list_departments(session)
        ]


@router.post(
    "/departments",
    response_model=DepartmentOut,
    status_code=201,
    responses=errors(401, 403, 409, 422),
)
def add_department(
    body: DepartmentIn,
    actor: AdminDep,
    govflow: GovflowDep,
) -> DepartmentOut:
    with govflow.database.session() as session:
        department = directory.add_department(session, body.code, body.name)
        session.add(
            AuditEvent(actor=actor.username, command="add_department", data=body.model_dump())
        )
        return DepartmentOut(code=department.code, name=department.name)


@router.get("/users", response_model=list[UserOut], responses=errors(401, 403))
def list_users(
    actor: OpsDep,
    govflow: GovflowDep,
) -> list[UserOut]:
    with govflow.database.read_session() as session:
        return [
            UserOut(
                username=u.username,
                display_name=u.display_name,
                roles=roles,
                departments=depts,
                active=u.active,
            )
            for u, roles, depts in directory.list_users(session)
        ]


@router.post(
    "/users", response_model=UserOut, status_code=201, responses=errors(401, 403, 409, 422)
)
def add_user(
    body: UserIn,
    actor: AdminDep,
    govflow: GovflowDep,
) -> UserOut:
    with govflow.database.session() as session:
        user = directory.add_user(
            session, body.username, body.roles, body.departments, body.password, body.display_name
        )
        session.add(
            AuditEvent(
                actor=actor.username,
                command="add_user",
                data={
                    "username": body.username,
                    "roles": body.roles,
                    "departments": body.departments,
                },
            )
        )
        return UserOut(
            username=user.username,
            display_name=user.display_name,
            roles=sorted(set(body.roles)),
            departments=sorted(set(body.departments)),
            active=user.active,
        )
