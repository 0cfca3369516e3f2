"""An Invoice as XRechnung 3.0 in the UN/CEFACT CII syntax (D16B).

The element order is the XSD's (a sequence); `validate` checks it with the schema and the
EN 16931 and XRechnung schematrons. Written with the standard library's ElementTree: the
document is small and its shape fixed.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from basisit.invoicing.model import CREDIT_NOTE, EXEMPT, Invoice, InvoiceLine, Party, amount

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
XRECHNUNG_3 = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PEPPOL_BILLING = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
SEPA_CREDIT_TRANSFER = "58"
ONE = "C62"  # UN/ECE Rec. 20: one (each line is one delivery of the month)

_NS = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
for _prefix, _uri in _NS.items():
    ET.register_namespace(_prefix, _uri)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """A child `prefix:Name` in its namespace."""
    prefix, name = tag.split(":")
    child = ET.SubElement(parent, f"{{{_NS[prefix]}}}{name}", attrs)
    if text is not None:
        child.text = text
    return child


def _date(parent: ET.Element, tag: str, day: dt.date, kind: str = "udt") -> None:
    _el(_el(parent, tag), f"{kind}:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _rate(invoice: Invoice) -> str:
    return f"{invoice.vat_rate.normalize():f}" if invoice.vat_rate else "0"


def _party(parent: ET.Element, tag: str, party: Party, invoice: Invoice, seller: bool) -> None:
    node = _el(parent, tag)
    _el(node, "ram:Name", party.name)
    if seller:
        contact = _el(node, "ram:DefinedTradeContact")
        _el(contact, "ram:PersonName", invoice.seller_contact.name)
        _el(_el(contact, "ram:TelephoneUniversalCommunication"), "ram:CompleteNumber",
            invoice.seller_contact.phone)  # fmt: skip
        _el(_el(contact, "ram:EmailURIUniversalCommunication"), "ram:URIID",
            invoice.seller_contact.email)  # fmt: skip
    address = _el(node, "ram:PostalTradeAddress")
    _el(address, "ram:PostcodeCode", party.postcode)
    _el(address, "ram:LineOne", party.street)
    _el(address, "ram:CityName", party.town)
    _el(address, "ram:CountryID", party.country)
    _el(_el(node, "ram:URIUniversalCommunication"), "ram:URIID", party.address_id,
        schemeID=party.address_scheme)  # fmt: skip
    if party.vat_id:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")
    if party.tax_number:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.tax_number, schemeID="FC")


def _tax(parent: ET.Element, invoice: Invoice, basis: int | None = None) -> None:
    """The VAT of a line (basis None) or of the whole invoice (its breakdown, BG-23)."""
    tax = _el(parent, "ram:ApplicableTradeTax")
    if basis is not None:
        _el(tax, "ram:CalculatedAmount", amount(invoice.vat_cent))
    _el(tax, "ram:TypeCode", "VAT")
    if basis is not None and invoice.vat_category == EXEMPT and invoice.exemption_reason:
        _el(tax, "ram:ExemptionReason", invoice.exemption_reason)
    if basis is not None:
        _el(tax, "ram:BasisAmount", amount(basis))
    _el(tax, "ram:CategoryCode", invoice.vat_category)
    _el(tax, "ram:RateApplicablePercent", _rate(invoice))


def _line(parent: ET.Element, line: InvoiceLine, invoice: Invoice) -> None:
    item = _el(parent, "ram:IncludedSupplyChainTradeLineItem")
    doc = _el(item, "ram:AssociatedDocumentLineDocument")
    _el(doc, "ram:LineID", line.line_id)
    _el(_el(doc, "ram:IncludedNote"), "ram:Content", line.note)
    product = _el(item, "ram:SpecifiedTradeProduct")
    _el(product, "ram:SellerAssignedID", line.product_id)
    _el(product, "ram:Name", line.name)
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    _el(_el(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount",
        amount(line.price_cent))  # fmt: skip
    _el(_el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", "1", unitCode=ONE)
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    _tax(settlement, invoice)
    if line.allowance_cent:
        allowance = _el(settlement, "ram:SpecifiedTradeAllowanceCharge")
        _el(_el(allowance, "ram:ChargeIndicator"), "udt:Indicator", "false")
        _el(allowance, "ram:ActualAmount", amount(line.allowance_cent))
        _el(allowance, "ram:Reason", line.allowance_reason or "Zuschuss")
    _el(_el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"),
        "ram:LineTotalAmount", amount(line.net_cent))  # fmt: skip


def to_xml(invoice: Invoice) -> bytes:
    """The invoice as a CII document, UTF-8 with an XML declaration."""
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"), "ram:ID",
        PEPPOL_BILLING)  # fmt: skip
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", XRECHNUNG_3)
    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.number)
    _el(document, "ram:TypeCode", invoice.type_code)
    _date(document, "ram:IssueDateTime", invoice.issue_date)
    for note in invoice.notes:
        _el(_el(document, "ram:IncludedNote"), "ram:Content", note)
    trade = _el(root, "rsm:SupplyChainTradeTransaction")
    for line in invoice.lines:
        _line(trade, line, invoice)
    agreement = _el(trade, "ram:ApplicableHeaderTradeAgreement")
    _el(agreement, "ram:BuyerReference", invoice.buyer_reference)
    _party(agreement, "ram:SellerTradeParty", invoice.seller, invoice, seller=True)
    _party(agreement, "ram:BuyerTradeParty", invoice.buyer, invoice, seller=False)
    _el(trade, "ram:ApplicableHeaderTradeDelivery")
    settlement = _el(trade, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _el(means, "ram:TypeCode", SEPA_CREDIT_TRANSFER)
    _el(_el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", invoice.iban)
    if invoice.bic:
        _el(_el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID",
            invoice.bic)  # fmt: skip
    _tax(settlement, invoice, basis=invoice.line_total_cent)
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", invoice.period_start)
    _date(period, "ram:EndDateTime", invoice.period_end)
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", invoice.payment_terms)
    _date(terms, "ram:DueDateDateTime", invoice.due_date)
    sums = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(sums, "ram:LineTotalAmount", amount(invoice.line_total_cent))
    _el(sums, "ram:TaxBasisTotalAmount", amount(invoice.line_total_cent))
    _el(sums, "ram:TaxTotalAmount", amount(invoice.vat_cent), currencyID=invoice.currency)
    _el(sums, "ram:GrandTotalAmount", amount(invoice.gross_cent))
    _el(sums, "ram:DuePayableAmount", amount(invoice.gross_cent))
    if invoice.preceding is not None and invoice.type_code == CREDIT_NOTE:
        ref = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(ref, "ram:IssuerAssignedID", invoice.preceding[0])
        _date(ref, "ram:FormattedIssueDateTime", invoice.preceding[1], kind="qdt")
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True)) + b"\n"
