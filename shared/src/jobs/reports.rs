//! The daily sales-report job, and the reads `GET /reports/sales` makes.
//!
//! Each run closes the previous UTC day's report from its counters (`sales::Sales::close`: once; a second
//! run finds it closed and changes nothing) and mails it to the admins (once per day's `Message-ID`). Hosts
//! run it daily shortly after midnight UTC (an EventBridge schedule, a Cron Trigger, the local host's timer);
//! running it more often is harmless. An order event delivered after its day was closed still moves that
//! day's counters, but not the closed report, which never changes: hosts close a day some minutes after it
//! ends so that queued events are in.

use std::sync::Arc;

use serde::Serialize;

use crate::domain::sales::{Day, SalesReport};
use crate::jobs::JobError;
use crate::mail::{MailSettings, Outgoing, Sent, letters};
use crate::ports::item_store::{ItemStore, StoreError};
use crate::ports::Clock;
use crate::sales::Sales;

/// What one run of the report job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRun {
    /// The day it closed.
    pub date: Day,
    /// Whether it closed the report now (`false`: it was closed before).
    pub closed_now: bool,
    /// Whether it mailed the report now.
    pub mailed_now: bool,
}

/// The sales reports' use cases.
#[derive(Clone)]
pub struct SalesReports<S> {
    sales: Sales<S>,
    outgoing: Outgoing<S>,
    settings: MailSettings,
    clock: Arc<dyn Clock>,
}

impl<S: ItemStore + Clone> SalesReports<S> {
    /// The reports on `store`.
    pub fn new(store: S, outgoing: Outgoing<S>, settings: MailSettings, clock: Arc<dyn Clock>) -> Self {
        Self { sales: Sales::new(store), outgoing, settings, clock }
    }

    /// Closes and mails the report of the day before today (UTC).
    ///
    /// # Errors
    /// [`JobError`] when the store or the carrier fails; a later run finishes what this one did not.
    pub async fn close_yesterday(&self) -> Result<ReportRun, JobError> {
        let now = self.clock.now();
        self.close(Day::of(now).previous()).await
    }

    /// Closes and mails the report of `day`.
    ///
    /// # Errors
    /// As [`Self::close_yesterday`].
    pub async fn close(&self, day: Day) -> Result<ReportRun, JobError> {
        let now = self.clock.now();
        let (report, closed_now) = self.sales.close(day, now).await.map_err(JobError::store)?;
        let mailed_now = if self.settings.admins.is_empty() {
            tracing::warn!(date = %day, "no admin address is configured; the sales report is closed but not mailed");
            false
        } else {
            let mail = letters::sales_report(&self.settings, &report, now).map_err(JobError::mail)?;
            self.outgoing.send_once(&mail).await.map_err(JobError::outgoing)? == Sent::Now
        };
        tracing::info!(date = %day, closed_now, mailed_now, "sales report");
        Ok(ReportRun { date: day, closed_now, mailed_now })
    }

    /// The report people read: the closed one when the day was closed, the live counters otherwise.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn report(&self, day: Day) -> Result<SalesReport, StoreError> {
        self.sales.report(day).await
    }

    /// Today (UTC), by the clock.
    pub fn today(&self) -> Day {
        Day::of(self.clock.now())
    }
}
