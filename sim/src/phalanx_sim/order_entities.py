"""The entity records of an order's life: the order and its versions, each command with its
report, and each execution report. Every record is registered in :class:`SimState` and reported
through ``emit`` as it is created, in the order the venue creates them."""

from __future__ import annotations

from phalanx_sim.contracts import ContractInfo
from phalanx_sim.entities import Command, CommandReport, ExecutionReport, Order, OrderVersion
from phalanx_sim.order_spec import OrderSpec, Origin
from phalanx_sim.sink import Emit
from phalanx_sim.state import AccountBook, CommandRecord, OrderRecord, SimState
from phalanx_sim.times import VenueClock

__all__ = ["OrderEntities"]


class OrderEntities:
    """Creates the records of orders, commands and executions for the matching engine."""

    def __init__(self, state: SimState, clock: VenueClock, emit: Emit) -> None:
        self.state = state
        self.clock = clock
        self._emit = emit

    def new_order(
        self,
        book: AccountBook,
        info: ContractInfo,
        spec: OrderSpec,
        origin: Origin,
        ts: str,
        order_id: int,
        status: str,
        parent_id: int | None = None,
        linked_id: int | None = None,
    ) -> OrderRecord:
        state = self.state
        account = book.account
        order = Order(
            id=order_id,
            accountId=account.id,
            contractId=info.contract.id,
            timestamp=ts,
            action=spec.action,
            ordStatus=status,
            admin=False,
            parentId=parent_id,
            linkedId=linked_id,
        )
        version = OrderVersion(
            id=state.next_id(),
            orderId=order_id,
            orderQty=spec.qty,
            orderType=spec.order_type,
            price=spec.price,
            stopPrice=spec.stop_price,
            maxShow=spec.max_show,
            pegDifference=spec.peg_difference,
            timeInForce=spec.time_in_force,
            expireTime=spec.expire_time,
            text=spec.text,
        )
        rec = OrderRecord(
            order=order,
            version=version,
            info=info,
            account=account,
            exchange_order_id=str(order_id),
        )
        rec.versions.append(version)
        state.orders[order_id] = rec
        book.orders[order_id] = rec
        book.live[order_id] = rec
        state.register(order)
        state.register(version)
        self._emit(account.id, "order", "Created", order)
        self._emit(account.id, "orderVersion", "Created", version)
        command = self.new_command(rec, "New", origin, spec.cl_ord_id, ts)
        if status == "Working":
            self.execution(rec, command, ts, "New")
        return rec

    def new_command(
        self, rec: OrderRecord, kind: str, origin: Origin, cl_ord_id: str | None, ts: str
    ) -> CommandRecord:
        state = self.state
        account_id = rec.account.id
        command = Command(
            id=state.next_id(),
            orderId=rec.order.id,
            timestamp=ts,
            commandType=kind,
            commandStatus="AtExecution",
            clOrdId=cl_ord_id,
            senderId=origin.user_id,
            userSessionId=origin.session_id,
            activationTime=origin.activation_time,
            customTag50=origin.custom_tag50,
            isAutomated=origin.is_automated,
        )
        crec = CommandRecord(command=command, account_id=account_id)
        report = CommandReport(
            id=state.next_id(),
            commandId=command.id,
            timestamp=ts,
            commandStatus="AtExecution",
            ordStatus=rec.order.ordStatus,
        )
        crec.reports.append(report)
        rec.commands.append(crec)
        state.commands[command.id] = crec
        state.register(command)
        state.register(report)
        self._emit(account_id, "command", "Created", command)
        self._emit(account_id, "commandReport", "Created", report)
        return crec

    def execution(
        self,
        rec: OrderRecord,
        command: CommandRecord,
        ts: str,
        exec_type: str,
        last_qty: int | None = None,
        last_px: float | None = None,
        text: str | None = None,
    ) -> ExecutionReport:
        order = rec.order
        report = ExecutionReport(
            id=self.state.next_id(),
            commandId=command.command.id,
            name=rec.account.name,
            accountId=order.accountId,
            contractId=order.contractId,
            timestamp=ts,
            tradeDate=self.clock.trade_date(),
            orderId=order.id,
            execType=exec_type,
            action=order.action,
            ordStatus=order.ordStatus,
            cumQty=rec.cum_qty,
            avgPx=rec.avg_px,
            lastQty=last_qty,
            lastPx=last_px,
            text=text,
            exchangeOrderId=rec.exchange_order_id,
        )
        command.executions.append(report)
        self.state.register(report)
        self._emit(order.accountId, "executionReport", "Created", report)
        return report
